import assert from 'node:assert/strict'
import { test } from 'node:test'

import { contentDisposition } from './content-disposition.js'

test('non-ASCII names get an ASCII fallback and an exact RFC 5987 filename* (B03)', () => {
  const name = 'Réunion-équipe_会议_2025-01-31-10-00-00.mp4'
  const header = contentDisposition(name)
  assert.match(header, /^[\x20-\x7e]+$/)
  assert.ok(
    header.includes(
      "filename*=UTF-8''R%C3%A9union-%C3%A9quipe_%E4%BC%9A%E8%AE%AE_2025-01-31-10-00-00.mp4",
    ),
  )
  const encoded = /filename\*=UTF-8''(.+)$/.exec(header)?.[1] ?? ''
  assert.equal(decodeURIComponent(encoded), name)
})

test('quotes, backslashes and line breaks never reach the quoted fallback', () => {
  const header = contentDisposition('a"b;c\r\nX-Evil: 1.mp4')
  const fallback = /filename="([^"]*)"/.exec(header)?.[1]
  assert.equal(fallback, 'a_b;c__X-Evil: 1.mp4')
  assert.doesNotMatch(header, /[\r\n]/)
  assert.equal((header.match(/"/g) ?? []).length, 2)
})

test('a lone surrogate cannot make the header throw', () => {
  const header = contentDisposition('bad\uD800name.mp4')
  assert.match(header, /^[\x20-\x7e]+$/)
  assert.ok(header.endsWith("filename*=UTF-8''bad%EF%BF%BDname.mp4"))
})
