import assert from 'node:assert/strict'
import { test } from 'node:test'

import { buildFileName } from './file-name.js'

const base = { meetingId: 'm', createdAtMs: Date.parse('2025-01-31T10:00:00Z'), extension: 'mp4' }

test('a supplied name keeps its base with the sniffed extension, without paths', () => {
  assert.equal(buildFileName({ ...base, suppliedName: '../../etc/talk.webm' }), 'talk.mp4')
  assert.equal(
    buildFileName({ ...base, suppliedName: 'C:\\rec\\Weekly sync.mov' }),
    'Weekly sync.mp4',
  )
})

test('control characters and bidirectional overrides are removed', () => {
  const spoof = 'invoice\u202Egpj.exe'
  assert.equal(buildFileName({ ...base, suppliedName: spoof }), 'invoicegpj.mp4')
  assert.equal(buildFileName({ ...base, suppliedName: 'a\r\nb\u0000c.mp4' }), 'abc.mp4')
})

test('without a name, Jibri’s convention: meeting and start time', () => {
  assert.equal(
    buildFileName({ ...base, meetingId: 'Réunion-équipe_会议', suppliedName: undefined }),
    'Réunion-équipe_会议_2025-01-31-10-00-00.mp4',
  )
  assert.equal(
    buildFileName({ ...base, meetingId: '../..', suppliedName: '' }),
    'recording_2025-01-31-10-00-00.mp4',
  )
})
