import type { TokenVerifier } from '../auth/principal.js'
import type { Config } from '../config.js'
import type { RecordingRecord, RecordingRepository } from '../db/recording-repository.js'
import type { BlobStore } from '../storage/blob-store.js'
import type { AuditLog } from '../recordings/audit-log.js'
import type { IngestService } from '../recordings/ingest-service.js'
import type { RecordingsService } from '../recordings/recordings-service.js'

/** Everything the HTTP layer needs, wired by hand in main.ts (or a test). */
export interface AppDeps {
  config: Readonly<Config>
  verifier: TokenVerifier
  audit: AuditLog
  recordings: RecordingsService
  ingest: IngestService
  /** For readiness checks only. */
  repository: RecordingRepository
  blobs: BlobStore
  /** Set only with `DOWNLOAD_MODE=redirect`: downloads answer 302 to such a link. */
  downloadLinks?: DownloadLinks
}

/**
 * Short-lived links that serve a recording's bytes straight from the storage. A link carries
 * its own signature and expiry, so the client follows it without our Authorization header.
 */
export interface DownloadLinks {
  /** An absolute URL for the bytes of `record`, valid for the configured lifetime. */
  presign(record: RecordingRecord): Promise<string>
}
