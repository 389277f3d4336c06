import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'

import { createMemoryByteSource, type ByteSource } from './byte-source.js'
import { readCorpusFile, seededRandom, virtualFile } from './corpus-fixtures.js'
import { MediaProber, sniffContainer, type MediaInfo } from './media-prober.js'

const TIMEOUT_MS = 3000
// Worker start-up, termination and a loaded CI machine; well below a second in practice.
const SLACK_MS = 2000

const FILES = [
  'ts-ebml_chrome57.webm',
  'ts-ebml_firefox55nightly.webm',
  'music-metadata_no-duration.webm',
  'music-metadata_big-buck-bunny_trailer-short.vp8.webm',
  'music-metadata_matroska-test-w1-test5-short.mkv',
  'mp4ff_prog_8s.mp4',
  'ffmpeg-progress_input.mp4',
  'mediabunny_frag-buck-bunny.mp4',
  'mp4ff_bbb5s_aac_sidx.mp4',
  'music-metadata_sample_640x360.mov',
  'file-type_fixture-mjpeg.mov',
  'music-metadata_Apple-voice-memo.m4a',
  'peertube_video_short.ogv',
  'music-metadata_audio.opus.ogg',
]

interface Variant {
  name: string
  bytes: Uint8Array
}

function variantsOf(file: string, random: () => number): Variant[] {
  const bytes = readCorpusFile(file)
  const cut = (fraction: number) => bytes.subarray(0, Math.floor(bytes.length * fraction))
  const overwritten = (at: number) => {
    const copy = new Uint8Array(bytes)
    const length = Math.min(4096, Math.floor(copy.length / 10))
    const start = Math.min(Math.floor(copy.length * at), copy.length - length)
    for (let i = start; i < start + length; i++) copy[i] = Math.floor(random() * 256)
    return copy
  }
  return [
    { name: 'header only (first 1 KiB)', bytes: bytes.subarray(0, 1024) },
    { name: 'truncated at 10%', bytes: cut(0.1) },
    { name: 'truncated at 50%', bytes: cut(0.5) },
    { name: 'truncated at 90%', bytes: cut(0.9) },
    { name: 'random block near the start', bytes: overwritten(0.02) },
    { name: 'random block in the middle', bytes: overwritten(0.5) },
    { name: 'random block near the end', bytes: overwritten(0.97) },
  ]
}

/**
 * A WebM with 16 MiB of zeros between its header and its last Cluster: once mediabunny's 10 MiB
 * resync gives up it loops forever without yielding (mediabunny 1.61).
 */
function spinningWebm(): ByteSource {
  const bytes = readCorpusFile('ts-ebml_chrome52.webm')
  const cluster = Buffer.from([0x1f, 0x43, 0xb6, 0x75])
  const header = bytes.subarray(0, Buffer.from(bytes).indexOf(cluster))
  const tail = bytes.subarray(Buffer.from(bytes).lastIndexOf(cluster))
  return virtualFile([header, { zeros: 16 * 1024 * 1024 }, tail])
}

/** Runs `work` while a 5 ms interval measures how long the main thread's event loop stalls. */
async function withLoopMonitor<T>(work: () => Promise<T>) {
  let ticks = 0
  let last = performance.now()
  let maxGapMs = 0
  const interval = setInterval(() => {
    const now = performance.now()
    maxGapMs = Math.max(maxGapMs, now - last)
    last = now
    ticks++
  }, 5)
  try {
    const result = await work()
    return { result, ticks, maxGapMs }
  } finally {
    clearInterval(interval)
  }
}

function assertSane(info: MediaInfo | null, label: string) {
  if (info === null) return
  assert.match(info.contentType, /^(audio|video)\/[a-z0-9.+-]+$/, label)
  assert.match(info.extension, /^[a-z0-9]+$/, label)
  const d = info.durationSeconds
  assert.ok(d === null || (Number.isFinite(d) && d > 0), `${label}: duration ${d}`)
}

describe('MediaProber on damaged input', () => {
  const prober = new MediaProber({ timeoutMs: TIMEOUT_MS })
  after(() => prober.close())
  const random = seededRandom(20240611)

  for (const file of FILES) {
    test(`${file}: truncated and overwritten variants never reject or hang`, async () => {
      for (const variant of variantsOf(file, random)) {
        const label = `${file} ${variant.name}`
        const started = performance.now()
        const info = await prober.probe(createMemoryByteSource(variant.bytes))
        const elapsedMs = performance.now() - started
        assert.ok(elapsedMs < TIMEOUT_MS + SLACK_MS, `${label} took ${elapsedMs} ms`)
        assertSane(info, label)
        if (info) assert.equal(info.container, sniffContainer(variant.bytes), label)
      }
    })
  }

  test('a parser stuck in a loop is cut off at the timeout; the event loop runs on', async () => {
    const started = performance.now()
    const { result, ticks, maxGapMs } = await withLoopMonitor(() => prober.probe(spinningWebm()))
    const elapsedMs = performance.now() - started
    assert.deepEqual(result, {
      container: 'webm',
      contentType: 'video/webm',
      extension: 'webm',
      durationSeconds: null,
    })
    assert.ok(elapsedMs >= TIMEOUT_MS - 50 && elapsedMs < TIMEOUT_MS + SLACK_MS, `${elapsedMs} ms`)
    assert.ok(ticks > 10, `timer fired ${ticks} times`)
    assert.ok(maxGapMs < 500, `event loop stalled ${maxGapMs} ms`)
    // A fresh worker serves later probes.
    const next = await prober.probe(createMemoryByteSource(readCorpusFile('ts-ebml_chrome52.webm')))
    assert.ok(next?.durationSeconds && Math.abs(next.durationSeconds - 50.783) < 0.05)
  })

  test('a probe that never gets its bytes resolves at the timeout, sniffed container', async () => {
    const bytes = readCorpusFile('ts-ebml_chrome52.webm')
    const stalled: ByteSource = {
      size: bytes.length,
      read: (start, end) =>
        start === 0 ? Promise.resolve(bytes.subarray(0, end)) : new Promise(() => {}),
    }
    const info = await prober.probe(stalled)
    assert.deepEqual(info, {
      container: 'webm',
      contentType: 'video/webm',
      extension: 'webm',
      durationSeconds: null,
    })
  })

  test('a failing ByteSource rejects with its original error', async () => {
    const bytes = readCorpusFile('ts-ebml_chrome52.webm')
    const failure = new Error('storage unavailable')
    const failing: ByteSource = {
      size: bytes.length,
      read: async (start, end) => {
        if (start > 0) throw failure
        return bytes.subarray(start, end)
      },
    }
    await assert.rejects(prober.probe(failing), (error) => error === failure)
    const headFailing: ByteSource = { size: 10, read: () => Promise.reject(failure) }
    await assert.rejects(prober.probe(headFailing), (error) => error === failure)
  })

  test('probes of damaged files keep the event loop responsive', async () => {
    const inputs = FILES.flatMap((file) => variantsOf(file, seededRandom(7)).map((v) => v.bytes))
    const { result, ticks, maxGapMs } = await withLoopMonitor(() =>
      Promise.all(inputs.map((bytes) => prober.probe(createMemoryByteSource(bytes)))),
    )
    assert.equal(result.length, inputs.length)
    assert.ok(ticks > 0, 'a timer fired while probing')
    assert.ok(maxGapMs < 500, `event loop stalled ${maxGapMs} ms`)
  })

  test('sample-count bombs are refused before parsing; the header still gives a duration', async () => {
    // 2^31 samples in 12 bytes: mediabunny would expand them into one array, and a worker that
    // runs out of heap that way can abort the whole process (nodejs/node#47224).
    for (const [box, field] of [
      ['stts', 12],
      ['ctts', 12],
    ] as const) {
      const bytes = Buffer.from(readCorpusFile('go-mp4_sample.mp4'))
      bytes.writeUInt32BE(0x7fffffff, bytes.indexOf(box, 0, 'latin1') + field)
      const started = performance.now()
      const info = await prober.probe(createMemoryByteSource(bytes))
      assert.ok(performance.now() - started < 1000, `${box}: refused quickly`)
      assert.equal(info?.contentType, 'video/mp4', box)
      assert.ok(info.durationSeconds && Math.abs(info.durationSeconds - 1.024) < 0.01, box)
    }
  })

  test('workers that cannot start are our failure: the probe rejects', async () => {
    const broken = new MediaProber({ maxHeapMb: 1 })
    try {
      const bytes = readCorpusFile('go-mp4_sample.mp4')
      await assert.rejects(broken.probe(createMemoryByteSource(bytes)))
    } finally {
      await broken.close()
    }
  })

  test('a closed prober rejects new probes', async () => {
    const closed = new MediaProber()
    await closed.close()
    const bytes = readCorpusFile('go-mp4_sample.mp4')
    await assert.rejects(closed.probe(createMemoryByteSource(bytes)), /closed/)
  })
})
