import { loadOrCreateSigningSecret } from '../auth/signing-secret.js'
import { issueToken, type TokenRequest } from '../auth/token-issuer.js'
import type { Config } from '../config.js'

/** Mints a token the configured server accepts; only possible with a shared HMAC secret. */
export async function mintToken(config: Readonly<Config>, request: TokenRequest) {
  const { key } = config.auth
  if (key.kind !== 'generated-secret' && key.kind !== 'secret') {
    throw new Error('tokens can only be minted with an HMAC secret; your IdP issues them')
  }
  const secret =
    key.kind === 'secret' ? key.secret : await loadOrCreateSigningSecret(config.dataDir)
  return issueToken(config.auth, secret, request)
}
