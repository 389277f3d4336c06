import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'

import { readCorpusFile, virtualFile, type CountingSource } from './corpus-fixtures.js'
import { MediaProber } from './media-prober.js'

// Recordings can be many GiB: each case stretches a real file to 1 GiB with zeros where the
// bulk of the media would be, and checks the probe still reads only headers and the tail.

const GIB = 1024 * 1024 * 1024
const MAX_READ_BYTES = 16 * 1024 * 1024

interface Box {
  type: string
  start: number
  end: number
}

function topLevelBoxes(bytes: Uint8Array): Box[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const boxes: Box[] = []
  for (let start = 0; start + 8 <= bytes.length;) {
    const size = view.getUint32(start)
    const type = Buffer.from(bytes.subarray(start + 4, start + 8)).toString('latin1')
    assert.ok(size >= 8, 'test files use 32-bit box sizes')
    boxes.push({ type, start, end: start + size })
    start += size
  }
  return boxes
}

function boxHeader(type: string, size: number): Uint8Array {
  const header = Buffer.alloc(8)
  header.writeUInt32BE(size, 0)
  header.write(type, 4, 'latin1')
  return header
}

function only<T>(items: T[], what: string): T {
  assert.equal(items.length, 1, what)
  return items[0] as T
}

describe('MediaProber on 1 GiB files', () => {
  const prober = new MediaProber()
  after(() => prober.close())

  async function probeHuge(source: CountingSource, expectedSeconds: number) {
    assert.ok(source.size >= GIB)
    const info = await prober.probe(source)
    assert.ok(info?.durationSeconds, 'duration found')
    assert.ok(Math.abs(info.durationSeconds - expectedSeconds) < 0.05, `${info.durationSeconds}`)
    assert.ok(source.bytesRead < MAX_READ_BYTES, `read ${source.bytesRead} bytes`)
    return info
  }

  test('MP4 with the moov after a 1 GiB mdat', async () => {
    const bytes = readCorpusFile('generated/meeting-10min-640x360-moov-at-end.mp4')
    const boxes = topLevelBoxes(bytes)
    const mdat = only(
      boxes.filter((box) => box.type === 'mdat'),
      'one mdat',
    )
    const moov = only(
      boxes.filter((box) => box.type === 'moov'),
      'one moov',
    )
    const payload = GIB
    const source = virtualFile([
      bytes.subarray(0, mdat.start),
      boxHeader('mdat', 8 + payload),
      { zeros: payload },
      bytes.subarray(moov.start, moov.end),
    ])
    const info = await probeHuge(source, 600)
    assert.equal(info.contentType, 'video/mp4')
  })

  test('fragmented MP4 with 1 GiB of fragments before the last ones', async () => {
    const bytes = readCorpusFile('generated/meeting-10min-640x360-fragmented.mp4')
    const boxes = topLevelBoxes(bytes)
    const moov = only(
      boxes.filter((box) => box.type === 'moov'),
      'one moov',
    )
    const moofs = boxes.filter((box) => box.type === 'moof')
    const secondFragment = moofs[1]
    const lastFragments = moofs[moofs.length - 10]
    assert.ok(secondFragment && lastFragments && moofs[0]?.start === moov.end)
    const source = virtualFile([
      bytes.subarray(0, secondFragment.start), // header and first fragment
      boxHeader('free', 8 + GIB),
      { zeros: GIB },
      bytes.subarray(lastFragments.start),
    ])
    await probeHuge(source, 600.133)
  })

  test('WebM from MediaRecorder (no Duration element) grown to 1 GiB of clusters', async () => {
    // A long browser recording: the real header, then the real clusters over and over.
    const bytes = readCorpusFile('ts-ebml_chrome52.webm')
    const firstCluster = Buffer.from(bytes).indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]))
    const clusters = bytes.subarray(firstCluster)
    const repeats = Math.ceil(GIB / clusters.length)
    const source = virtualFile([bytes.subarray(0, firstCluster), ...Array(repeats).fill(clusters)])
    const info = await probeHuge(source, 50.783)
    assert.equal(info.contentType, 'video/webm')
  })

  test('Ogg with 1 GiB between its headers and its last pages', async () => {
    const bytes = readCorpusFile('peertube_video_short.ogv')
    const tailStart = bytes.length - 32 * 1024
    const source = virtualFile([
      bytes.subarray(0, 16 * 1024),
      { zeros: GIB },
      bytes.subarray(tailStart),
    ])
    const info = await probeHuge(source, 5.015)
    assert.equal(info.contentType, 'video/ogg')
  })
})
