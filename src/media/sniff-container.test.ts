import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { loadManifest, readCorpusFile } from './corpus-fixtures.js'
import { sniffContainer } from './sniff-container.js'

function bytes(...parts: (string | number[])[]): Uint8Array {
  return Buffer.concat(
    parts.map((part) =>
      typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part),
    ),
  )
}

function box(type: string, payload: Uint8Array | string = '', size?: number): Uint8Array {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload
  const header = Buffer.alloc(8)
  header.writeUInt32BE(size ?? 8 + body.length, 0)
  header.write(type, 4, 'latin1')
  return Buffer.concat([header, body])
}

const ftyp = (brand: string) => box('ftyp', `${brand}\0\0\0\0${brand}isom`)

describe('sniffContainer', () => {
  test('rejects empty input, text, HTML, playlists and images', () => {
    const rejected = [
      new Uint8Array(0),
      new Uint8Array(64),
      bytes('not mp4\n'),
      bytes('<!doctype html><title>404</title>'),
      bytes('#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n'),
      bytes([0x89], 'PNG\r\n\x1a\n'),
      bytes([0xff, 0xd8, 0xff, 0xe0]),
      ftyp('heic'),
      ftyp('mif1'),
      ftyp('avif'),
      bytes([0, 0, 0, 4], 'moov'), // a box smaller than its own header
      bytes([0, 0, 0, 0], 'moov'), // only mdat may run to the end of the file
      Buffer.concat([box('free', 'xx'), bytes('hello world, this is text')]),
    ]
    for (const head of rejected)
      assert.equal(sniffContainer(head), null, Buffer.from(head).toString('latin1'))
  })

  test('ISO-BMFF: brand qt or no ftyp is mov, fragments and other brands are mp4', () => {
    assert.equal(sniffContainer(ftyp('isom')), 'mp4')
    assert.equal(sniffContainer(ftyp('M4A ')), 'mp4')
    assert.equal(sniffContainer(ftyp('qt  ')), 'mov')
    assert.equal(sniffContainer(Buffer.concat([box('free'), ftyp('iso5')])), 'mp4')
    assert.equal(sniffContainer(box('styp', 'msdh\0\0\0\0msdh')), 'mp4')
    assert.equal(
      sniffContainer(Buffer.concat([box('moof', box('mfhd', '\0\0\0\0\0\0\0\x01'))])),
      'mp4',
    )
    assert.equal(sniffContainer(box('sidx', new Uint8Array(24))), 'mp4')
    assert.equal(sniffContainer(box('mdat', '', 1_000_000)), 'mov')
    assert.equal(sniffContainer(Buffer.concat([box('wide'), box('mdat', '', 0)])), 'mov')
    assert.equal(sniffContainer(box('moov', box('mvhd', new Uint8Array(100)))), 'mov')
  })

  test('EBML is matroska unless the DocType says webm, even with a damaged header', () => {
    const webm = readCorpusFile('ts-ebml_chrome57.webm').subarray(0, 100)
    assert.equal(sniffContainer(webm), 'webm')
    const mkv = readCorpusFile('file-type_fixture.mkv').subarray(0, 100)
    assert.equal(sniffContainer(mkv), 'matroska')
    assert.equal(sniffContainer(readCorpusFile('music-metadata_corrupt.mkv')), 'matroska')
    assert.equal(sniffContainer(bytes([0x1a, 0x45, 0xdf, 0xa3])), 'matroska')
  })

  test('Ogg', () => {
    assert.equal(sniffContainer(bytes('OggS', [0, 2])), 'ogg')
  })

  test('agrees with the manifest on which corpus files are media', () => {
    for (const entry of loadManifest()) {
      const head = readCorpusFile(entry.file).subarray(0, 64 * 1024)
      const container = sniffContainer(head)
      assert.equal(container === null, entry.expect_upload === 'reject', entry.file)
    }
  })
})
