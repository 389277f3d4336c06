/** What the parser learnt; `hasVideo` is null when the tracks could not be read. */
export type MediaAnalysis =
  { kind: 'media'; hasVideo: boolean | null; durationSeconds: number | null } | { kind: 'notMedia' }

/** Limits the parser must respect, derived from the worker's heap cap. */
export interface AnalysisLimits {
  /** Most samples a parser may expand into objects for one track or fragment. */
  maxSamples: number
}

/** Positive finite seconds, or null: parsers report 0 or NaN for files without content. */
export function usable(seconds: number | null | undefined): number | null {
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0 ? seconds : null
}

/** Runs `work`, turning any error (damaged media) into null. */
export async function attempt<T>(work: () => Promise<T>): Promise<T | null> {
  try {
    return await work()
  } catch {
    return null
  }
}

/**
 * The header's duration unless the content says it is far off (headers written before a crash,
 * or placeholders like 3900 s in an 8 s file); small differences are normal (edit lists, last
 * frame duration, subtitle tracks the content scan does not see). Either may be null.
 */
export function pickDuration(header: number | null, content: number | null): number | null {
  if (header === null || content === null) return header ?? content
  const toleranceSeconds = Math.max(10, 0.1 * Math.max(header, content))
  return Math.abs(header - content) <= toleranceSeconds ? header : content
}
