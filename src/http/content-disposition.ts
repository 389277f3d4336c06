const UNSAFE_IN_QUOTES = /[^\x20-\x7e]|["\\%]/g
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * `attachment` with an ASCII fallback `filename` (quotes, backslashes, control and non-ASCII
 * characters replaced by `_`) and the exact name as RFC 5987 `filename*`, so the header is
 * always valid ASCII and clients that understand UTF-8 names get the real one. Never throws:
 * a lone UTF-16 surrogate, which has no UTF-8 form, becomes U+FFFD.
 */
export function contentDisposition(fileName: string): string {
  const fallback = fileName.replace(UNSAFE_IN_QUOTES, '_')
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeRfc5987(fileName)}`
}

function encodeRfc5987(text: string): string {
  return encodeURIComponent(text.replace(LONE_SURROGATE, '\uFFFD')).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )
}
