import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

export const SECRET_FILE_NAME = 'jwt-secret'

/**
 * The embedded default's HS256 secret: created once in the data directory (mode 0600) and
 * reused afterwards, so tokens minted by the CLI keep working across restarts.
 */
export async function loadOrCreateSigningSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, SECRET_FILE_NAME)
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  try {
    await fs.writeFile(file, randomBytes(48).toString('base64url') + '\n', {
      flag: 'wx',
      mode: 0o600,
    })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
  const secret = (await fs.readFile(file, 'utf8')).trim()
  if (secret.length < 32) throw new Error(`the signing secret in ${file} is too short`)
  return secret
}
