import { findDocType } from './ebml.js'
import { readBoxHeader, readFourCc, TOP_LEVEL_BOX_TYPES } from './iso-box.js'

export type ContainerKind = 'mp4' | 'mov' | 'webm' | 'matroska' | 'ogg'

/** How many leading bytes the sniffers look at; more is ignored. */
export const SNIFF_HEAD_BYTES = 64 * 1024

// Boxes a recording can start with: ftyp normally, styp/moof/sidx for bare fragments, and the
// QuickTime classics (old MOV files have no ftyp and begin with mdat, moov, wide, free or skip).
const FIRST_BOX_TYPES = new Set([
  'ftyp',
  'styp',
  'moof',
  'sidx',
  'moov',
  'mdat',
  'free',
  'skip',
  'wide',
])
const FRAGMENT_BOX_TYPES = new Set(['styp', 'moof', 'sidx'])
// HEIF/AVIF stills and camera raw files share the ftyp layout but are not recordings.
const IMAGE_BRANDS = new Set([
  'heic',
  'heix',
  'heim',
  'heis',
  'hevc',
  'hevx',
  'hevm',
  'hevs',
  'mif1',
  'mif2',
  'msf1',
  'avif',
  'avis',
  'avio',
  'crx ',
])
const MAX_FTYP_BYTES = 4096
const MAX_BOXES_WALKED = 32

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return magic.every((byte, i) => bytes[i] === byte)
}

function containerOfBrand(head: Uint8Array, ftypOffset: number, ftypSize: number | null) {
  if (ftypSize === null || ftypSize < 16 || ftypSize > MAX_FTYP_BYTES) return null
  const major = readFourCc(head, ftypOffset + 8)
  if (major === null || IMAGE_BRANDS.has(major)) return null
  return major === 'qt  ' ? 'mov' : 'mp4'
}

function sniffIsoBmff(head: Uint8Array): ContainerKind | null {
  const first = readBoxHeader(head, 0)
  if (!first || !FIRST_BOX_TYPES.has(first.type)) return null
  if (first.size === null && first.type !== 'mdat') return null
  let offset = 0
  let sawFragment = false
  for (let i = 0; i < MAX_BOXES_WALKED && offset + 8 <= head.length; i++) {
    const box = readBoxHeader(head, offset)
    // Every box header that lies inside the head must be sane; text never gets this far.
    if (!box || !TOP_LEVEL_BOX_TYPES.has(box.type)) return null
    if (box.type === 'ftyp') return containerOfBrand(head, offset, box.size)
    if (FRAGMENT_BOX_TYPES.has(box.type)) sawFragment = true
    if (box.size === null) break
    offset += box.size
  }
  // No ftyp: fragments are ISO MP4 by definition, anything else is classic QuickTime.
  return sawFragment ? 'mp4' : 'mov'
}

/**
 * Cheap synchronous check on the first bytes (give it up to the first 64 KiB): which container
 * this is, or null. Used to reject non-media early during upload streaming.
 *
 * EBML is matroska unless its DocType says webm (a damaged EBML header still counts); `OggS` is
 * ogg; ISO-BMFF needs a plausible first box, `qt  ` brand or no ftyp at all means mov. Empty
 * input, text, HTML, playlists and HEIF/AVIF images give null. Only the first 64 KiB are read.
 */
export function sniffContainer(head: Uint8Array): ContainerKind | null {
  const bytes = head.subarray(0, SNIFF_HEAD_BYTES)
  if (startsWith(bytes, [0x1a, 0x45, 0xdf, 0xa3])) {
    return findDocType(bytes) === 'webm' ? 'webm' : 'matroska'
  }
  if (startsWith(bytes, [0x4f, 0x67, 0x67, 0x53])) return 'ogg'
  return sniffIsoBmff(bytes)
}
