/** How to answer a `Range` header for a resource of known size (RFC 9110 §14). */
export type RangeDecision =
  /** Serve the whole resource with 200: no header, or one the mirror ignores (multi-range, malformed, other unit). */
  | { readonly kind: 'full' }
  /** Serve the inclusive byte range with 206. */
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  /** Answer 416 with `Content-Range: bytes *\/size`. */
  | { readonly kind: 'unsatisfiable' };

const FULL: RangeDecision = { kind: 'full' };
const UNSATISFIABLE: RangeDecision = { kind: 'unsatisfiable' };
// `bytes=` then one range-spec; OWS is tolerated around the spec as in a one-element list.
const SINGLE_RANGE = /^bytes=[ \t]*(?:([0-9]+)-([0-9]*)|-([0-9]+))[ \t]*$/i;

// Digit strings beyond 2^53 are all "past the end" for any real blob; Infinity keeps comparisons right.
function toNumber(digits: string): number {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : Infinity;
}

/**
 * Decides how to serve `header` (the raw `Range` value) for a resource of `size` bytes. Only one
 * range is supported: a multi-range, malformed or non-`bytes` header is ignored and the whole
 * resource served, as RFC 9110 allows. `bytes=s-e` past the end is clipped; a first byte at or
 * beyond `size`, or a zero-length suffix, is unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return FULL;
  const match = SINGLE_RANGE.exec(header);
  if (match === null) return FULL;
  const [, first, last, suffix] = match;
  if (suffix !== undefined) {
    const length = toNumber(suffix);
    if (length === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, size - length), end: size - 1 };
  }
  const start = toNumber(first ?? '');
  const end = last === undefined || last === '' ? Infinity : toNumber(last);
  // A last-byte-pos below the first-byte-pos makes the range-spec invalid, so the header is ignored.
  if (end < start) return FULL;
  if (start >= size) return UNSATISFIABLE;
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}
