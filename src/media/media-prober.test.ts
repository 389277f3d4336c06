import assert from 'node:assert/strict'
import path from 'node:path'
import { after, describe, test } from 'node:test'

import { createFileByteSource, createMemoryByteSource } from './byte-source.js'
import {
  corpusPath,
  durationMatches,
  loadManifest,
  readCorpusFile,
  type ManifestEntry,
} from './corpus-fixtures.js'
import { MediaProber, type ContainerKind, type MediaInfo } from './media-prober.js'

const manifest = loadManifest()

/** The container the manifest describes (it was sniffed from the bytes, not the name). */
function manifestContainer(entry: ManifestEntry): ContainerKind {
  const text = entry.container
  if (text.startsWith('webm')) return 'webm'
  if (text.startsWith('matroska')) return 'matroska'
  if (text.startsWith('ogg')) return 'ogg'
  if (text.includes('QuickTime')) return 'mov'
  if (text.includes('MP4') || text.includes('ISO BMFF')) return 'mp4'
  throw new Error(`unexpected manifest container ${text}`)
}

function describeExpectation(entry: ManifestEntry): string {
  if (entry.expect_upload === 'reject') return 'rejected'
  const durations = entry.expect_duration_seconds
  return Array.isArray(durations) ? `accepted, ~${durations.join(' or ')} s` : 'accepted'
}

async function probeFile(prober: MediaProber, file: string): Promise<MediaInfo | null> {
  const source = await createFileByteSource(corpusPath(file))
  try {
    return await prober.probe(source)
  } finally {
    await source.close()
  }
}

describe('MediaProber on the shared corpus', () => {
  const prober = new MediaProber()
  after(() => prober.close())

  for (const entry of manifest) {
    test(`${entry.file}: ${describeExpectation(entry)}`, async () => {
      const info = await probeFile(prober, entry.file)
      if (entry.expect_upload === 'reject') {
        assert.equal(info, null)
        return
      }
      assert.ok(info, 'expected the upload to be accepted')
      assert.ok(
        durationMatches(entry.expect_duration_seconds, info.durationSeconds),
        `duration ${info.durationSeconds} vs ${JSON.stringify(entry.expect_duration_seconds)}`,
      )
      assert.equal(info.container, manifestContainer(entry), 'container is sniffed from content')
      const hasVideoStream = entry.streams?.some((stream) => stream.type === 'video') ?? false
      if (entry.categories.includes('audio-only')) {
        assert.match(info.contentType, /^audio\//)
      } else if (hasVideoStream) {
        assert.match(info.contentType, /^video\//)
      }
      if (info.durationSeconds !== null) assert.ok(info.durationSeconds > 0)
    })
  }

  test('every manifest entry was exercised', () => {
    assert.ok(manifest.length >= 84, `manifest lists ${manifest.length} files`)
  })

  test('wrong-ext_* files are typed by their content, not their name', async () => {
    const renamed = manifest.filter((entry) => path.basename(entry.file).startsWith('wrong-ext_'))
    assert.ok(renamed.length >= 2)
    for (const entry of renamed) {
      const info = await probeFile(prober, entry.file)
      assert.ok(info, entry.file)
      assert.equal(info.container, manifestContainer(entry), entry.file)
      assert.notEqual(`.${info.extension}`, path.extname(entry.file), entry.file)
      assert.ok(info.contentType.endsWith(info.container === 'mp4' ? '/mp4' : '/webm'))
    }
  })

  test('audio-only files get an audio type and audio extension', async () => {
    const audioOnly = manifest.filter((entry) => entry.categories.includes('audio-only'))
    assert.ok(audioOnly.length >= 10)
    for (const entry of audioOnly) {
      const info = await probeFile(prober, entry.file)
      assert.ok(info, entry.file)
      assert.match(info.contentType, /^audio\/(mp4|webm|x-matroska|ogg)$/, entry.file)
      assert.ok(['m4a', 'webm', 'mka', 'ogg'].includes(info.extension), entry.file)
    }
  })

  test('the probe reads the bytes, not a name: same bytes give the same answer', async () => {
    const bytes = readCorpusFile('ts-ebml_chrome57.webm')
    const fromMemory = await prober.probe(createMemoryByteSource(bytes))
    assert.deepEqual(fromMemory, await probeFile(prober, 'ts-ebml_chrome57.webm'))
  })

  test('Ogg starting with a Skeleton stream (file-type: application/ogg) is media', async () => {
    const skeleton = Buffer.alloc(27 + 1 + 64)
    skeleton.write('OggS', 0, 'latin1')
    skeleton[5] = 0x02 // beginning of stream
    skeleton.writeUInt32LE(0x5eed, 14)
    skeleton[26] = 1
    skeleton[27] = 64
    skeleton.write('fishead\0', 28, 'latin1')
    const ogv = readCorpusFile('peertube_video_short.ogv')
    const info = await prober.probe(createMemoryByteSource(Buffer.concat([skeleton, ogv])))
    assert.equal(info?.contentType, 'video/ogg')
    assert.ok(info.durationSeconds && Math.abs(info.durationSeconds - 5.015) < 0.05)
  })

  test('non-media uploads resolve null', async () => {
    const texts = [
      '',
      'not mp4\n',
      '<!DOCTYPE html><html><body>Moved</body></html>',
      '#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:4.0,\n/etc/passwd\n#EXT-X-ENDLIST\n',
      '{"recording": "meeting.webm"}',
    ]
    for (const text of texts) {
      const info = await prober.probe(createMemoryByteSource(new TextEncoder().encode(text)))
      assert.equal(info, null, JSON.stringify(text))
    }
    assert.equal(await prober.probe(createMemoryByteSource(new Uint8Array(4096))), null)
  })

  test('several probes run concurrently and all resolve', async () => {
    const files = manifest.slice(0, 24).map((entry) => entry.file)
    const results = await Promise.all(files.map((file) => probeFile(prober, file)))
    files.forEach((file, i) => {
      const entry = manifest.find((e) => e.file === file)
      assert.equal(results[i] === null, entry?.expect_upload === 'reject', file)
    })
  })
})
