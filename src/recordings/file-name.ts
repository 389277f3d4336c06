const MAX_NAME_CHARS = 200

/**
 * The name a download is saved under. A client-supplied name keeps its base (stripped of
 * paths and control characters) with the extension of the sniffed content; without one,
 * Jibri's convention is used: `<meeting>_<YYYY-MM-DD-HH-mm-ss>.<ext>`.
 */
export function buildFileName(options: {
  suppliedName: string | undefined
  meetingId: string
  createdAtMs: number
  extension: string
}): string {
  const supplied = options.suppliedName && cleanBase(options.suppliedName)
  const base =
    supplied ||
    `${cleanBase(options.meetingId) || 'recording'}_${jibriTimestamp(options.createdAtMs)}`
  return `${base.slice(0, MAX_NAME_CHARS)}.${options.extension}`
}

function cleanBase(name: string): string {
  const last = name.split(/[\\/]/).at(-1) ?? ''
  // Control characters, and the bidirectional overrides that make `gpj.exe` look like
  // `exe.jpg` in a save dialog.
  const printable = last
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '')
    .trim()
  const dot = printable.lastIndexOf('.')
  const withoutExtension = dot > 0 ? printable.slice(0, dot) : printable
  return withoutExtension.replace(/^\.+/, '')
}

function jibriTimestamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', '-').replaceAll(':', '-')
}
