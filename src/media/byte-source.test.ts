import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { createFileByteSource, createMemoryByteSource } from './byte-source.js'
import { createSplicedByteSource } from './spliced-byte-source.js'

const CONTENT = Buffer.from('0123456789abcdef', 'latin1')
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1')

describe('createFileByteSource', () => {
  let dir = ''
  let file = ''
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'byte-source-'))
    file = path.join(dir, 'bytes.bin')
    await writeFile(file, CONTENT)
  })
  after(() => rm(dir, { recursive: true, force: true }))

  test('reads ranges, clamping past the end and before the start', async () => {
    const source = await createFileByteSource(file)
    try {
      assert.equal(source.size, 16)
      assert.equal(text(await source.read(2, 6)), '2345')
      assert.equal(text(await source.read(-5, 3)), '012')
      assert.equal(text(await source.read(12, 100)), 'cdef')
      assert.equal((await source.read(16, 20)).length, 0)
      assert.equal((await source.read(5, 5)).length, 0)
    } finally {
      await source.close()
    }
  })

  test('close is idempotent and later reads reject', async () => {
    const source = await createFileByteSource(file)
    await Promise.all([source.close(), source.close()])
    await assert.rejects(source.read(0, 4), /closed/)
  })

  test('a missing file rejects without leaking a handle', async () => {
    await assert.rejects(createFileByteSource(path.join(dir, 'missing')), { code: 'ENOENT' })
  })
})

describe('createSplicedByteSource', () => {
  test('presents literal bytes and ranges of the base back to back', async () => {
    const base = createMemoryByteSource(CONTENT)
    const spliced = createSplicedByteSource(base, [
      { bytes: Buffer.from('XY', 'latin1') },
      { start: 0, end: 4 },
      { start: 10, end: 16 },
    ])
    assert.equal(spliced.size, 12)
    assert.equal(text(await spliced.read(0, 12)), 'XY0123abcdef')
    assert.equal(text(await spliced.read(1, 7)), 'Y0123a')
    assert.equal(text(await spliced.read(8, 50)), 'cdef')
    assert.equal((await spliced.read(12, 13)).length, 0)
  })
})
