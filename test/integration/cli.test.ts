import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

import { createPaddedMp4 } from '../support/media-fixtures.js'
import { CLI, startServerProcess, type ServerProcess } from '../support/process-server.js'

const run = promisify(execFile)
const FILE_BYTES = 300 * 1024 * 1024

describe('the command line', () => {
  let server: ServerProcess
  let work: string
  const cli = (...args: string[]) =>
    run(process.execPath, [CLI, ...args], { env: server.env, maxBuffer: 1024 * 1024 })

  before(async () => {
    server = await startServerProcess()
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-cli-'))
  })
  after(async () => {
    await server.stop()
    await fs.rm(work, { recursive: true, force: true })
  })

  test('every command explains itself with --help', async () => {
    for (const command of ['serve', 'token', 'upload', 'migrate', 'sweep', 'org', 'audit']) {
      const { stdout } = await cli(command, '--help')
      assert.match(stdout, new RegExp(`Usage: wcr-recordings ${command}`), command)
    }
  })

  test('token refuses to guess: a permission is required and must be a known one', async () => {
    await assert.rejects(cli('token', '--org', 'acme'), /permission/)
    await assert.rejects(cli('token', '--org', 'acme', '--permission', 'superuser'), /org_admin/)
    await assert.rejects(cli('token', '--org', '', '--permission', 'recorder'), /--org/)
    await assert.rejects(
      cli('token', '--org', 'acme', '--permission', 'recorder', '--ttl', '7d'),
      /AUTH_MAX_TOKEN_AGE/,
    )
  })

  test('upload streams a large file with flat memory and returns the recording', async () => {
    const media = await createPaddedMp4({ dir: work, sizeBytes: FILE_BYTES })
    const token = (await cli('token', '--org', 'acme', '--permission', 'recorder')).stdout.trim()
    const { stdout, stderr } = await run(
      '/usr/bin/time',
      [
        '-v',
        process.execPath,
        CLI,
        'upload',
        media.path,
        '--meeting-id',
        'cli-big',
        '--token',
        token,
        '--url',
        server.baseUrl,
        '--no-progress',
      ],
      { env: server.env, maxBuffer: 16 * 1024 * 1024 },
    )
    const recording = JSON.parse(stdout)
    assert.equal(recording.size_bytes, FILE_BYTES)
    assert.equal(recording.sha256, media.sha256)
    const maxRssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1])
    assert.ok(maxRssKb > 0 && maxRssKb < 200 * 1024, `CLI peak RSS ${maxRssKb} KiB`)
  })

  test('upload names the server it cannot reach', async () => {
    await assert.rejects(
      cli(
        'upload',
        CLI,
        '--meeting-id',
        'm',
        '--token',
        'x',
        '--url',
        'http://127.0.0.1:9',
        '--retries',
        '0',
      ),
      /cannot reach http:\/\/127\.0\.0\.1:9/,
    )
  })
})
