import { CustomSource, Input, Logging, LogLevel, type InputFormat } from 'mediabunny'

import { attempt } from './analysis-utils.js'
import type { ByteSource } from './byte-source.js'

// The parser runs on untrusted uploads and must not write to the server's output.
Logging.level = LogLevel.Silent

/** A mediabunny Input over `source` that only tries `formats` (never HLS). Caller disposes it. */
export function openInput(source: ByteSource, formats: InputFormat[]): Input {
  const custom = new CustomSource({
    getSize: () => source.size,
    read: (start, end) => source.read(start, end),
    handleUnhandledError: () => {}, // a failed prefetch nobody waits for is not our concern
  })
  return new Input({ source: custom, formats })
}

/** True if any video track, false if only audio, null if the tracks cannot be read. */
export async function readHasVideo(input: Input): Promise<boolean | null> {
  const tracks = await attempt(() => input.getTracks())
  if (!tracks || tracks.length === 0) return null
  if (tracks.some((track) => track.isVideoTrack())) return true
  return tracks.some((track) => track.isAudioTrack()) ? false : null
}
