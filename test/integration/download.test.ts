import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

import { recordingBlobKey } from '../../src/storage/keys.js'
import { corpusPath } from '../support/corpus.js'
import { httpRequest, rawHttpRequest, uploadFile, type RawResult } from '../support/http-client.js'
import { readSlice, sha256Of, sha256OfFile } from '../support/media-fixtures.js'
import { listBlobKeys, removeBlob } from '../support/state.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const run = promisify(execFile)

/** Real media stands in for RA1 (a recording must be media to be accepted). */
const SMALL = corpusPath('mp4ff_prog_8s.mp4')
const LARGE = corpusPath('generated/meeting-10min-640x360-faststart.mp4') // 2.5 MB, > 2 MiB
const MOOV_AT_END = corpusPath('generated/meeting-10min-640x360-moov-at-end.mp4')

const ROOM = 'Réunion-équipe_会议'
const JIBRI_NAME = `${ROOM}_2025-01-31-10-00-00.mp4`
const ENCODED_JIBRI_NAME = 'R%C3%A9union-%C3%A9quipe_%E4%BC%9A%E8%AE%AE_2025-01-31-10-00-00.mp4'
const HOSTILE_NAME = 'a"b;c\r\nX-Evil: 1.mp4'

/** RFC 6266 with an RFC 5987 value: only attr-chars after UTF-8'', nothing unsafe in quotes. */
const SAFE_DISPOSITION = /^attachment; filename="[^"\\\r\n]*"; filename\*=UTF-8''[\w!#$&+.^`|~%-]+$/

interface Recording {
  id: string
  url: string
  size_bytes: number
  sha256: string
  content_type: string
}

/** Environment for curl and httpx without proxies, so 127.0.0.1 is reached directly. */
function clientEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: os.tmpdir(), ...extra }
}

function header(result: RawResult, name: string): string[] {
  return result.headerLines.filter(([n]) => n === name).map(([, value]) => value)
}

describe('downloads over a real socket', () => {
  let t: TestServer
  let admin: string
  let recorder: string
  let scratch: string
  let small: Recording
  let smallBytes: Buffer

  const contentUrl = (recording: Recording) => t.baseUrl + new URL(recording.url).pathname
  const contentPath = (recording: Recording) => new URL(recording.url).pathname
  const auth = () => ({ authorization: `Bearer ${admin}` })
  const get = (recording: Recording, headers: Record<string, string | string[]> = {}) =>
    httpRequest(contentUrl(recording), { headers: { ...auth(), ...headers } })

  async function upload(file: string, query: Record<string, string> = {}): Promise<Recording> {
    const meeting = { meeting_id: `m-${randomUUID()}`, ...query }
    const response = await uploadFile({ baseUrl: t.baseUrl, token: recorder, file, query: meeting })
    assert.equal(response.status, 201, response.body.toString())
    return JSON.parse(response.body.toString()) as Recording
  }

  before(async () => {
    t = await startTestServer({ listen: true })
    admin = await t.token('org-a', ['org_admin'])
    recorder = await t.token('org-a', ['recorder'])
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-download-'))
    small = await upload(SMALL)
    smallBytes = await fs.readFile(SMALL)
  })
  after(async () => {
    await t.close()
    await fs.rm(scratch, { recursive: true, force: true })
  })

  describe('single ranges (S26, S27, S28)', () => {
    test('a GET without Range sends every byte with validators and Accept-Ranges', async () => {
      const response = await get(small)
      assert.equal(response.status, 200)
      assert.equal(response.headers['content-length'], String(smallBytes.length))
      assert.equal(response.headers['content-range'], undefined)
      assert.equal(response.headers['accept-ranges'], 'bytes')
      assert.equal(response.headers.etag, `"${small.sha256}"`)
      assert.ok(Number.isFinite(Date.parse(String(response.headers['last-modified']))))
      assert.ok(response.body.equals(smallBytes))
    })

    test('answers each satisfiable single range with 206 and exactly those bytes', async () => {
      const size = smallBytes.length
      const cases: [range: string, start: number, end: number][] = [
        ['bytes=0-99', 0, 99],
        [`bytes=${size - 100}-`, size - 100, size - 1],
        ['bytes=-100', size - 100, size - 1],
        [`bytes=-${size * 5}`, 0, size - 1],
        [`bytes=0-${size * 1000}`, 0, size - 1],
      ]
      for (const [range, start, end] of cases) {
        const response = await get(small, { range })
        assert.equal(response.status, 206, range)
        assert.equal(response.headers['content-range'], `bytes ${start}-${end}/${size}`, range)
        assert.equal(response.headers['content-length'], String(end - start + 1), range)
        assert.equal(response.headers.etag, `"${small.sha256}"`, range)
        assert.equal(response.headers['cache-control'], 'no-store', range)
        assert.ok(response.body.equals(smallBytes.subarray(start, end + 1)), range)
      }
    })

    test('answers unsatisfiable ranges with 416, bytes */N and a small problem body', async () => {
      const size = smallBytes.length
      for (const range of [
        `bytes=${size}-`,
        `bytes=${size * 5}-${size * 6}`,
        'bytes=-0',
        'bytes=99999999999999999999999-',
      ]) {
        const response = await get(small, { range })
        assert.equal(response.status, 416, range)
        assert.equal(response.headers['content-range'], `bytes */${size}`, range)
        assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
        assert.ok(response.body.length < 2048, range)
        assert.equal(JSON.parse(response.body.toString()).status, 416, range)
        assert.equal(response.body.indexOf(smallBytes.subarray(0, 16)), -1, range)
        assert.equal(response.headers['content-disposition'], undefined, range)
      }
    })

    test('ignores malformed, foreign or multiple ranges and sends the whole file', async () => {
      const values: (string | string[])[] = [
        'bytes=500-100',
        'bytes=abc',
        'bytes=',
        'items=0-5',
        'bytes 0-5',
        'bytes=0x10-0x20',
        'bytes=+5-10',
        'bytes=0-5,10-20',
        ['bytes=0-5', 'bytes=10-20'], // two header lines, which Node joins into one value
      ]
      for (const range of values) {
        const response = await get(small, { range })
        assert.equal(response.status, 200, String(range))
        assert.equal(response.headers['content-range'], undefined, String(range))
        assert.equal(response.headers['content-length'], String(smallBytes.length))
        assert.ok(response.body.equals(smallBytes), String(range))
      }
    })

    test('serves ranges past 1 MiB byte for byte, unchunked, as video/mp4 (B01)', async () => {
      const large = await upload(LARGE)
      const size = (await fs.stat(LARGE)).size
      for (const [start, end] of [
        [0, 1023],
        [1_048_576, 2_097_151],
      ] as const) {
        const response = await rawHttpRequest({
          baseUrl: t.baseUrl,
          method: 'GET',
          path: contentPath(large),
          headers: { ...auth(), range: `bytes=${start}-${end}` },
        })
        assert.equal(response.status, 206)
        assert.deepEqual(header(response, 'content-range'), [`bytes ${start}-${end}/${size}`])
        assert.deepEqual(header(response, 'content-length'), [String(end - start + 1)])
        assert.deepEqual(header(response, 'accept-ranges'), ['bytes'])
        assert.deepEqual(header(response, 'content-type'), ['video/mp4'])
        assert.deepEqual(header(response, 'transfer-encoding'), [])
        assert.ok(response.body.equals(await readSlice(LARGE, start, end)))
      }

      const whole = await rawHttpRequest({
        baseUrl: t.baseUrl,
        method: 'GET',
        path: contentPath(large),
        headers: auth(),
      })
      assert.equal(whole.status, 200)
      assert.deepEqual(header(whole, 'content-length'), [String(size)])
      assert.deepEqual(header(whole, 'accept-ranges'), ['bytes'])
      assert.deepEqual(header(whole, 'transfer-encoding'), [])
      assert.equal(sha256Of(whole.body), await sha256OfFile(LARGE))
    })

    test('serves the last 2 MiB of a moov-at-end MP4 as a suffix range (B10)', async () => {
      const recording = await upload(MOOV_AT_END)
      const size = (await fs.stat(MOOV_AT_END)).size
      const response = await get(recording, { range: 'bytes=-2097152' })
      assert.equal(response.status, 206)
      assert.equal(
        response.headers['content-range'],
        `bytes ${size - 2_097_152}-${size - 1}/${size}`,
      )
      assert.equal(response.headers['content-length'], '2097152')
      assert.ok(response.body.equals(await readSlice(MOOV_AT_END, size - 2_097_152, size - 1)))
    })
  })

  test('answers a plain 404 when the blob is gone (no Content-Range)', async () => {
    const recording = await upload(SMALL)
    const key = recordingBlobKey(recording.id)
    assert.ok((await listBlobKeys(t.config)).includes(key), 'the blob is stored at its key')
    await removeBlob(t.config, key)
    assert.ok(!(await listBlobKeys(t.config)).includes(key))

    const response = await get(recording, { range: 'bytes=0-9' })
    assert.equal(response.status, 404)
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
    assert.equal(response.headers['content-range'], undefined)
    assert.equal(response.headers['content-disposition'], undefined)
    assert.equal(JSON.parse(response.body.toString()).status, 404)
  })

  describe('conditional requests (S31)', () => {
    test('answers a matching If-None-Match or If-Modified-Since with 304 and no body', async () => {
      const first = await get(small)
      const etag = String(first.headers.etag)
      const lastModified = String(first.headers['last-modified'])
      const future = new Date(Date.now() + 86_400_000).toUTCString()

      const cases: [headers: Record<string, string>, status: number][] = [
        [{ 'if-none-match': etag }, 304],
        [{ 'if-none-match': '"x"' }, 200],
        [{ 'if-none-match': '*' }, 304],
        [{ 'if-modified-since': lastModified }, 304],
        [{ 'if-none-match': '"x"', 'if-modified-since': future }, 200],
        [{ 'if-match': '"x"' }, 412],
        [{ 'if-match': etag, range: 'bytes=0-9' }, 206],
      ]
      for (const [headers, status] of cases) {
        const response = await get(small, headers)
        const label = JSON.stringify(headers)
        assert.equal(response.status, status, label)
        if (status === 304) {
          assert.equal(response.body.length, 0, label)
          assert.equal(response.headers.etag, etag, label)
          assert.equal(response.headers['cache-control'], 'no-store', label)
          assert.equal(response.headers['content-disposition'], undefined, label)
        }
        if (status === 200) assert.ok(response.body.equals(smallBytes), label)
        if (status === 206) assert.ok(response.body.equals(smallBytes.subarray(0, 10)), label)
        if (status === 412) {
          assert.equal(JSON.parse(response.body.toString()).status, 412)
          assert.equal(response.headers['content-disposition'], undefined)
        }
      }
    })
  })

  describe('HEAD (B02)', () => {
    const head = (recording: Recording, headers: Record<string, string> = {}) =>
      rawHttpRequest({ baseUrl: t.baseUrl, method: 'HEAD', path: contentPath(recording), headers })

    test('reports what GET would send, with no body on the wire', async () => {
      const got = await get(small)
      const response = await head(small, auth())
      assert.equal(response.status, 200)
      assert.deepEqual(header(response, 'content-length'), [got.headers['content-length']])
      assert.deepEqual(header(response, 'content-length'), [String(small.size_bytes)])
      assert.deepEqual(header(response, 'content-type'), [got.headers['content-type']])
      assert.deepEqual(header(response, 'accept-ranges'), ['bytes'])
      assert.deepEqual(header(response, 'etag'), [got.headers.etag])
      assert.equal(response.body.length, 0)
    })

    test('ignores Range: answers 200 with the full length', async () => {
      const response = await head(small, { ...auth(), range: 'bytes=0-9' })
      assert.equal(response.status, 200)
      assert.deepEqual(header(response, 'content-length'), [String(small.size_bytes)])
      assert.deepEqual(header(response, 'content-range'), [])
      assert.equal(response.body.length, 0)
    })

    test('returns 401 without a token', async () => {
      const response = await head(small)
      assert.equal(response.status, 401)
      assert.deepEqual(header(response, 'www-authenticate'), ['Bearer realm="recordings"'])
    })

    test('returns 404 for a deleted recording', async () => {
      const doomed = await upload(SMALL)
      const deleted = await httpRequest(`${t.baseUrl}/recordings/${doomed.id}`, {
        method: 'DELETE',
        headers: auth(),
      })
      assert.equal(deleted.status, 204)
      const response = await head(doomed, auth())
      assert.equal(response.status, 404)
      assert.equal(response.body.length, 0)
    })
  })

  describe('Content-Disposition (B03)', () => {
    /** GETs the recording and checks the header is ASCII, well-formed and names `expected`. */
    async function assertDisposition(recording: Recording, expected: string): Promise<RawResult> {
      const response = await rawHttpRequest({
        baseUrl: t.baseUrl,
        method: 'GET',
        path: contentPath(recording),
        headers: auth(),
      })
      assert.equal(response.status, 200)
      assert.ok(
        response.head.every(
          (byte) => byte === 0x0d || byte === 0x0a || (byte >= 0x20 && byte < 0x7f),
        ),
        'the response head is pure ASCII',
      )
      const [disposition = ''] = header(response, 'content-disposition')
      assert.match(disposition, SAFE_DISPOSITION)
      const encoded = /filename\*=UTF-8''(.+)$/.exec(disposition)?.[1] ?? ''
      assert.equal(decodeURIComponent(encoded), expected)
      assert.equal(sha256Of(response.body), recording.sha256)
      return response
    }

    test('encodes a non-ASCII file name given as ?filename= in RFC 5987 form', async () => {
      const recording = await upload(SMALL, { filename: JIBRI_NAME })
      const response = await assertDisposition(recording, JIBRI_NAME)
      const [disposition] = header(response, 'content-disposition')
      assert.ok(disposition?.endsWith(`filename*=UTF-8''${ENCODED_JIBRI_NAME}`))
    })

    test('encodes a non-ASCII file name given as the multipart filename', async () => {
      const boundary = `----wcr${randomUUID()}`
      const body = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="meeting_id"\r\n\r\n` +
            `m-${randomUUID()}\r\n--${boundary}\r\n` +
            `Content-Disposition: form-data; name="file"; filename="${JIBRI_NAME}"\r\n` +
            'Content-Type: video/mp4\r\n\r\n',
        ),
        smallBytes,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ])
      const created = await httpRequest(`${t.baseUrl}/recordings`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${recorder}`,
          'content-type': `multipart/form-data; boundary=${boundary}`,
        },
        body,
      })
      assert.equal(created.status, 201, created.body.toString())
      const recording = JSON.parse(created.body.toString()) as Recording
      const response = await assertDisposition(recording, JIBRI_NAME)
      const [disposition] = header(response, 'content-disposition')
      assert.ok(disposition?.endsWith(`filename*=UTF-8''${ENCODED_JIBRI_NAME}`))
    })

    test('names a recording without a file name after its meeting, Jibri style', async () => {
      const recording = await upload(SMALL, {
        meeting_id: ROOM,
        created_at: '2025-01-31T10:00:00Z',
      })
      const response = await assertDisposition(recording, JIBRI_NAME)
      const [disposition] = header(response, 'content-disposition')
      assert.ok(disposition?.endsWith(`filename*=UTF-8''${ENCODED_JIBRI_NAME}`))
    })

    test('a file name with quotes and CRLF injects no header', async () => {
      const viaQuery = await upload(SMALL, { filename: HOSTILE_NAME })
      const created = await httpRequest(`${t.baseUrl}/recordings?meeting_id=m-${randomUUID()}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${recorder}`,
          'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(HOSTILE_NAME)}`,
        },
        body: smallBytes,
      })
      assert.equal(created.status, 201, created.body.toString())
      const viaHeader = JSON.parse(created.body.toString()) as Recording

      for (const recording of [viaQuery, viaHeader]) {
        const response = await rawHttpRequest({
          baseUrl: t.baseUrl,
          method: 'GET',
          path: contentPath(recording),
          headers: auth(),
        })
        assert.equal(response.status, 200)
        assert.deepEqual(header(response, 'x-evil'), [])
        const [disposition = ''] = header(response, 'content-disposition')
        assert.equal(header(response, 'content-disposition').length, 1)
        assert.match(disposition, SAFE_DISPOSITION)
        const encoded = /filename\*=UTF-8''(.+)$/.exec(disposition)?.[1] ?? ''
        // The stored name may drop the control characters, but nothing else of the name.
        assert.match(decodeURIComponent(encoded), /^a"b;c(\r\n)?X-Evil: 1\.mp4$/)
        assert.equal(sha256Of(response.body), recording.sha256)
      }
    })
  })

  describe('clients that do not follow redirects (B04)', () => {
    test('httpx client.stream without follow_redirects receives the bytes', async () => {
      const out = path.join(scratch, `httpx-${randomUUID()}.mp4`)
      const script = [
        'import os, httpx',
        "headers = {'Authorization': 'Bearer ' + os.environ['TOKEN']}",
        'with httpx.Client(headers=headers) as client:',
        "    with client.stream('GET', os.environ['URL']) as response:",
        "        with open(os.environ['OUT'], 'wb') as f:",
        '            for chunk in response.iter_bytes():',
        '                f.write(chunk)',
        '        print(response.status_code, len(response.history))',
      ].join('\n')
      const { stdout } = await run('/usr/bin/python3', ['-c', script], {
        env: clientEnv({ TOKEN: admin, URL: contentUrl(small), OUT: out }),
        timeout: 30_000,
      })
      assert.equal(stdout.trim(), '200 0')
      assert.equal(await sha256OfFile(out), small.sha256)
      assert.equal(small.sha256, await sha256OfFile(SMALL))
    })

    test('curl without -L gets 200 and no redirect; with -L the same bytes', async () => {
      const plain = path.join(scratch, `curl-${randomUUID()}.mp4`)
      const followed = path.join(scratch, `curl-L-${randomUUID()}.mp4`)
      const authHeader = `Authorization: Bearer ${admin}`
      const { stdout } = await run(
        'curl',
        [
          '-sS',
          '-o',
          plain,
          '-w',
          '%{http_code} %{num_redirects}',
          '-H',
          authHeader,
          contentUrl(small),
        ],
        { env: clientEnv(), timeout: 30_000 },
      )
      assert.equal(stdout, '200 0')
      await run('curl', ['-sSL', '-H', authHeader, '-o', followed, contentUrl(small)], {
        env: clientEnv(),
        timeout: 30_000,
      })
      assert.equal(await sha256OfFile(plain), small.sha256)
      assert.equal(await sha256OfFile(followed), small.sha256)
    })
  })
})
