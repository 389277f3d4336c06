import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

import { corpusPath, REPO_ROOT } from '../support/corpus.js'
import { CLI, startServerProcess, type ServerProcess } from '../support/process-server.js'

const run = promisify(execFile)
const PYTHON = '/usr/bin/python3' // Debian's python, where python3-httpx installs
const SAMPLE = 'generated/meeting-10min-640x360-moov-at-end.mp4'

/** The fenced code blocks of README.md in a given language, in order. */
async function readmeBlocks(language: string): Promise<string[]> {
  const readme = await fs.readFile(path.join(REPO_ROOT, 'README.md'), 'utf8')
  const pattern = new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g')
  return [...readme.matchAll(pattern)].map((m) => m[1] ?? '')
}

describe('the README walkthrough works as written', () => {
  let server: ServerProcess
  let work: string
  let adminToken: string
  let recorderToken: string
  const sha = async (file: string) =>
    createHash('sha256')
      .update(await fs.readFile(file))
      .digest('hex')

  before(async () => {
    server = await startServerProcess()
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-readme-'))
    const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env: server.env })
    adminToken = (await cli('token', '--org', 'acme', '--permission', 'org_admin')).stdout.trim()
    recorderToken = (await cli('token', '--org', 'acme', '--permission', 'recorder')).stdout.trim()
    await fs.copyFile(corpusPath(SAMPLE), path.join(work, 'meeting.mp4'))
  })
  after(async () => {
    await server.stop()
    await fs.rm(work, { recursive: true, force: true })
  })

  test('the shell walkthrough: token, upload (raw, multipart, CLI), list, download', async () => {
    const [walkthrough] = (await readmeBlocks('sh')).filter((b) =>
      b.includes('wcr-recordings token'),
    )
    assert.ok(walkthrough, 'README has the walkthrough block')
    const script = walkthrough
      .replaceAll('npx wcr-recordings', `node ${CLI}`)
      .replaceAll('http://localhost:8080', server.baseUrl)
      // The download line names a placeholder url: use the one the list returns.
      .replace(/"http[^"]*\/recordings\/rec_\.\.\.\/content\.mp4"/, '"$(first_url)"')
    const prelude = `set -euo pipefail
first_url() { curl -s ${server.baseUrl}/recordings -H "Authorization: Bearer $TOKEN" | ${PYTHON} -c 'import json,sys; print(json.load(sys.stdin)["recordings"][0]["url"])'; }
export WCR_URL=${server.baseUrl}
`
    const { stdout } = await run('bash', ['-c', prelude + script], {
      cwd: work,
      env: server.env,
      maxBuffer: 16 * 1024 * 1024,
    })
    assert.match(stdout, /"recordings"/)
    assert.equal(await sha(path.join(work, 'meeting-recording.mp4')), await sha(corpusPath(SAMPLE)))

    // Three uploads of the same bytes for the same meeting are one recording (safe retries).
    const list = await fetch(`${server.baseUrl}/recordings?meeting_id=weekly-sync`, {
      headers: { authorization: `Bearer ${adminToken}` },
    }).then((r) => r.json() as Promise<{ recordings: { duration_seconds: number }[] }>)
    assert.equal(list.recordings.length, 1)
    assert.equal(list.recordings[0]?.duration_seconds, 600)
  })

  test('the httpx example of the recordings documentation, verbatim but host and token', async () => {
    const python = (await readmeBlocks('python'))[0] ?? ''
    assert.ok(python?.includes('client.stream("GET", url)'))
    const script = python
      .replace('Bearer your-token', `Bearer ${adminToken}`)
      .replaceAll('http://localhost:8080', server.baseUrl)
    await fs.writeFile(path.join(work, 'example.py'), script)
    await run(PYTHON, ['example.py'], { cwd: work })
    assert.equal(await sha(path.join(work, 'recording.mp4')), await sha(corpusPath(SAMPLE)))
  })

  test('the curl examples of the recordings documentation, verbatim but host and token', async () => {
    const list = await run('curl', [
      '-sS',
      `${server.baseUrl}/recordings`,
      '-H',
      `Authorization: Bearer ${adminToken}`,
    ])
    const url = JSON.parse(list.stdout).recordings[0].url
    await run(
      'curl',
      [
        '-sS',
        '-L',
        url,
        '-H',
        `Authorization: Bearer ${adminToken}`,
        '-o',
        'meeting-recording.mp4',
      ],
      { cwd: work },
    )
    assert.equal(await sha(path.join(work, 'meeting-recording.mp4')), await sha(corpusPath(SAMPLE)))
    assert.ok(recorderToken.length > 20)
  })
})
