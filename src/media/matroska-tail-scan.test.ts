import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { createMemoryByteSource } from './byte-source.js'
import { countingSource, loadManifest, readCorpusFile, virtualFile } from './corpus-fixtures.js'
import { scanMatroskaTail } from './matroska-tail-scan.js'

const GIB = 1024 * 1024 * 1024
const MIB = 1024 * 1024
const CLUSTER_ID = Buffer.from([0x1f, 0x43, 0xb6, 0x75])
const NO_DURATION_WEBMS = [
  'ts-ebml_chrome57.webm',
  'ts-ebml_chrome52.webm',
  'ts-ebml_firefox55nightly.webm',
  'music-metadata_no-duration.webm',
]

function expectedSeconds(file: string): number {
  const expected = loadManifest().find((entry) => entry.file === file)?.expect_duration_seconds
  assert.ok(Array.isArray(expected) && expected[0] !== undefined, `manifest lists ${file}`)
  return expected[0]
}

/**
 * A 1 GiB file made of the real header (everything before the first Cluster), zeros, and the
 * real last Cluster through the end: what a long browser recording looks like to a tail scan.
 */
function hugeVariant(bytes: Uint8Array) {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  const firstCluster = buffer.indexOf(CLUSTER_ID)
  const lastCluster = buffer.lastIndexOf(CLUSTER_ID)
  assert.ok(firstCluster > 0 && lastCluster > firstCluster)
  const header = bytes.subarray(0, firstCluster)
  const tail = bytes.subarray(lastCluster)
  return virtualFile([header, { zeros: GIB - header.length - tail.length }, tail])
}

describe('scanMatroskaTail', () => {
  for (const file of NO_DURATION_WEBMS) {
    test(`${file}: duration from the last Cluster matches ffprobe's packet span`, async () => {
      const bytes = readCorpusFile(file)
      const source = countingSource(createMemoryByteSource(bytes))
      const seconds = await scanMatroskaTail(source)
      assert.ok(seconds !== null)
      assert.ok(Math.abs(seconds - expectedSeconds(file)) < 0.05, `${seconds}`)
      if (bytes.length > 2 * MIB)
        assert.ok(source.bytesRead < bytes.length / 2, 'reads the tail only')
    })
  }

  for (const file of ['ts-ebml_chrome52.webm', 'ts-ebml_firefox55nightly.webm']) {
    test(`${file} stretched to 1 GiB: same answer, bounded reads`, async () => {
      const bytes = readCorpusFile(file)
      const real = await scanMatroskaTail(createMemoryByteSource(bytes))
      const huge = hugeVariant(bytes)
      assert.equal(huge.size, GIB)
      assert.equal(await scanMatroskaTail(huge), real)
      assert.ok(huge.bytesRead < 16 * MIB, `read ${huge.bytesRead} bytes`)
    })
  }

  test('gives up after maxScanBytes when the tail holds no Cluster', async () => {
    const bytes = readCorpusFile('ts-ebml_chrome57.webm')
    const header = bytes.subarray(0, Buffer.from(bytes).indexOf(CLUSTER_ID))
    const huge = virtualFile([header, { zeros: GIB }])
    assert.equal(await scanMatroskaTail(huge, { maxScanBytes: 8 * MIB }), null)
    assert.ok(huge.bytesRead <= 8 * MIB + 64 * 1024, `read ${huge.bytesRead} bytes`)
  })

  test('a file cut inside its last Cluster ends at the last complete block', async () => {
    const bytes = readCorpusFile('ts-ebml_chrome52.webm')
    const full = await scanMatroskaTail(createMemoryByteSource(bytes))
    const cut = await scanMatroskaTail(
      createMemoryByteSource(bytes.subarray(0, bytes.length - 5000)),
    )
    assert.ok(full !== null && cut !== null)
    assert.ok(cut > 0 && cut < full, `${cut} < ${full}`)
  })

  test('resolves null for bytes without any Cluster', async () => {
    assert.equal(await scanMatroskaTail(createMemoryByteSource(new Uint8Array(0))), null)
    assert.equal(await scanMatroskaTail(createMemoryByteSource(new Uint8Array(1000))), null)
  })
})
