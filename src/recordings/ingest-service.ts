import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

import type { Principal } from '../auth/principal.js'
import type { RecordingRecord, RecordingRepository } from '../db/recording-repository.js'
import { errors, isAppError } from '../errors.js'
import type { MediaInfo, MediaProber } from '../media/media-prober.js'
import { sniffContainer } from '../media/media-prober.js'
import type { BlobStore, StagedBlob } from '../storage/blob-store.js'
import { recordingBlobKey } from '../storage/keys.js'
import type { AuditLog } from './audit-log.js'
import type { Clock } from './clock.js'
import { buildFileName } from './file-name.js'
import { createRecordingId } from './recording-id.js'
import { computeExpiry } from './retention.js'
import type { RetentionLookup } from './retention-service.js'
import { UploadMeter } from './upload-meter.js'

export interface IngestRequest {
  principal: Principal
  meetingId: string
  /** The meeting's start, when the recorder knows it; defaults to the upload time. */
  createdAt?: number
  fileName?: string
  idempotencyKey?: string
  /** SHA-256 the client says the body has (from Content-Digest); checked after streaming. */
  expectedSha256?: Buffer
  /** Exact size of the recording when the client declared it (raw bodies' Content-Length). */
  declaredSizeBytes?: number
  body: Readable
  clientIp?: string
  requestId?: string
}

export interface IngestResult {
  recording: RecordingRecord
  /** False when an earlier upload (same Idempotency-Key, or same meeting and bytes) is returned. */
  created: boolean
}

/**
 * Upload, whole or nothing: stream to a staged blob while hashing, make it durable, read type
 * and duration from the bytes, publish the blob, then commit the row. Any failure before the
 * commit removes the staged bytes; nothing is visible until the row exists.
 */
export class IngestService {
  constructor(
    private readonly deps: {
      recordings: RecordingRepository
      blobs: BlobStore
      prober: MediaProber
      audit: AuditLog
      clock: Clock
      maxUploadBytes: number
      /** The org's retention, read at each upload (operators may override it per org). */
      retention: RetentionLookup
    },
  ) {}

  async ingest(request: IngestRequest): Promise<IngestResult> {
    const { principal } = request
    const earlier = await this.findEarlierByKey(request)
    if (earlier) {
      request.body.resume()
      return { recording: earlier, created: false }
    }

    const id = createRecordingId(this.deps.clock())
    const staged = await this.deps.blobs.beginUpload(recordingBlobKey(id))
    try {
      const { sha256, sizeBytes, media } = await this.receive(request, staged)

      // The same bytes for the same meeting are the same recording: a recorder retrying
      // after a lost response (with or without a key) gets the first one back.
      const same = await this.deps.recordings.findSameContent(
        principal.orgId,
        request.meetingId,
        sha256,
        this.deps.clock(),
      )
      if (same) {
        // A leftover (S3 blip) is found by the orphan scan; the answer must not change.
        await staged.discard().catch(() => undefined)
        return { recording: same, created: false }
      }

      const retentionSeconds = await this.deps.retention.retentionSecondsFor(principal.orgId)
      const record = this.buildRecord({ request, id, sha256, sizeBytes, media, retentionSeconds })
      await staged.publish()
      const outcome = await this.deps.recordings
        .insert(record, this.deps.clock())
        .catch(async (error: unknown) => {
          await this.deps.blobs.delete(record.blobKey).catch(() => undefined)
          throw error
        })
      if (!outcome.inserted) {
        // Lost a race with a retry of the same upload (same key, or same meeting and bytes):
        // keep the first, drop ours.
        await this.deps.blobs.delete(record.blobKey)
        if (!outcome.existing || outcome.existing.meetingId !== record.meetingId) {
          throw errors.idempotencyKeyReused()
        }
        return { recording: outcome.existing, created: false }
      }

      // Fail closed: an upload the audit log does not know about must not stay visible.
      await this.audit(request, 'success', id, { size_bytes: sizeBytes }).catch(
        async (error: unknown) => {
          await this.deps.recordings.remove(id).catch(() => undefined)
          await this.deps.blobs.delete(record.blobKey).catch(() => undefined)
          throw error
        },
      )
      return { recording: record, created: true }
    } catch (error) {
      await staged.discard().catch(() => undefined)
      await this.audit(request, 'failure', undefined, {
        reason: isAppError(error) ? error.code : 'error',
      }).catch(() => undefined)
      throw error
    }
  }

  private async findEarlierByKey(request: IngestRequest): Promise<RecordingRecord | undefined> {
    if (request.idempotencyKey === undefined) return undefined
    // Only a visible recording answers for its key: an expired or deleted one stays gone.
    const earlier = await this.deps.recordings.findByIdempotencyKey(
      request.principal.orgId,
      request.idempotencyKey,
      this.deps.clock(),
    )
    if (!earlier) return undefined
    // A retry is the same upload: same meeting, and (where the client told us) same size and
    // digest. Anything else reusing the key is a client bug we must not paper over.
    const differs =
      earlier.meetingId !== request.meetingId ||
      (request.declaredSizeBytes !== undefined &&
        request.declaredSizeBytes !== earlier.sizeBytes) ||
      (request.expectedSha256 !== undefined &&
        !request.expectedSha256.equals(Buffer.from(earlier.sha256, 'hex')))
    if (differs) throw errors.idempotencyKeyReused()
    return earlier
  }

  private async receive(request: IngestRequest, staged: StagedBlob) {
    const meter = new UploadMeter(this.deps.maxUploadBytes, sniffContainer)
    await pipeline(request.body, meter, staged.sink)
    const sha256 = meter.sha256Hex()
    if (request.expectedSha256 && !request.expectedSha256.equals(Buffer.from(sha256, 'hex'))) {
      throw errors.digestMismatch()
    }
    await staged.finish()

    const source = await staged.openByteSource()
    let media: MediaInfo | null
    try {
      media = await this.deps.prober.probe(source)
    } finally {
      await source.close()
    }
    if (!media) throw errors.unsupportedMediaType()
    return { sha256, sizeBytes: meter.bytes, media }
  }

  private buildRecord(options: {
    request: IngestRequest
    id: string
    sha256: string
    sizeBytes: number
    media: MediaInfo
    retentionSeconds: number
  }): RecordingRecord {
    const { request, media } = options
    const now = this.deps.clock()
    const createdAt = Math.floor((request.createdAt ?? now) / 1000) * 1000
    return {
      id: options.id,
      orgId: request.principal.orgId,
      meetingId: request.meetingId,
      createdAt,
      uploadedAt: now,
      expiresAt: computeExpiry(createdAt, options.retentionSeconds, now),
      durationMs: media.durationSeconds === null ? null : Math.round(media.durationSeconds * 1000),
      sizeBytes: options.sizeBytes,
      contentType: media.contentType,
      extension: media.extension,
      sha256: options.sha256,
      blobKey: recordingBlobKey(options.id),
      fileName: buildFileName({
        suppliedName: request.fileName,
        meetingId: request.meetingId,
        createdAtMs: createdAt,
        extension: media.extension,
      }),
      legalHold: false,
      idempotencyKey: request.idempotencyKey ?? null,
      uploadedBy: request.principal.subject,
    }
  }

  private audit(
    request: IngestRequest,
    outcome: 'success' | 'failure',
    recordingId: string | undefined,
    detail: Record<string, unknown>,
  ) {
    return this.deps.audit.append({
      action: 'upload',
      outcome,
      orgId: request.principal.orgId,
      actor: request.principal.subject,
      recordingId,
      clientIp: request.clientIp,
      requestId: request.requestId,
      detail: { meeting_id: request.meetingId, ...detail },
    })
  }
}
