import type { ReadRange } from './content-store.js';

/**
 * Checks `range` against a blob of `size` bytes and returns the half-open byte interval.
 * Shared by the stores so they reject the same ranges with the same message.
 */
export function checkRange(range: ReadRange | undefined, size: number): { start: number; end: number } {
  const offset = range?.offset ?? 0;
  const length = range?.length ?? size - offset;
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > size
  ) {
    throw new RangeError(
      `range offset=${offset} length=${range?.length ?? 'rest'} is outside the blob of ${size} bytes`,
    );
  }
  return { start: offset, end: offset + length };
}
