import { isRecordingId } from '../recordings/recording-id.js'

/**
 * Storage keys are built here from server-made ids only, never from client input such as
 * file names or meeting ids. A two-character shard keeps directories and S3 prefixes small.
 * Keys never share a prefix that a delete could over-match: each ends in the full id.
 */
export function recordingBlobKey(recordingId: string): string {
  if (!isRecordingId(recordingId)) throw new Error('refusing to build a key from a non-id')
  return `recordings/${recordingId.slice(-2)}/${recordingId}`
}
