// Bounds the memory held by the chunks of finished stream writes.
//
// Every chunk a response streams is a Buffer whose bytes live outside V8's heap (1 MiB file reads
// from the content store, socket reads of a body relayed from a peer). Such bytes are freed only
// when V8 collects the young generation, and V8 starts that collection for Buffer memory alone
// late: once 32 MiB of young Buffers have piled up (twice its built-in maximum semi-space size on
// 64-bit Node.js 20, whatever `--max-semi-space-size` says; seen with `--trace-gc`), while
// streaming allocates too little on the heap to trigger it sooner. Three parallel 200 MiB
// downloads thus kept tens of MiB of sent chunks resident. Asking for a young-generation
// collection every few MiB streamed keeps that garbage to a few MiB, for well under a millisecond
// per collection (0.1–0.3 ms measured here: little else lives in the young generation).

/** A young-generation collection (`globalThis.gc` of `node --expose-gc`, called with `{ type: 'minor' }`). */
export type CollectYoung = () => void;

/** Told the size of each chunk streamed; collects the young generation once enough has gone by. */
export interface BufferReclaimer {
  streamed(bytes: number): void;
}

/** Options of {@link createBufferReclaimer}. */
export interface BufferReclaimerOptions {
  /** Bytes streamed between two collections. @default 8 MiB */
  readonly everyBytes?: number;
}

/** Defaults of {@link BufferReclaimerOptions}. */
export const RECLAIM_DEFAULTS: Readonly<Required<BufferReclaimerOptions>> = Object.freeze({
  everyBytes: 8 * 1024 * 1024,
});

/** A reclaimer calling `collect` every `everyBytes` streamed; one that does nothing without `collect`. */
export function createBufferReclaimer(
  collect: CollectYoung | undefined,
  options: BufferReclaimerOptions = {},
): BufferReclaimer {
  const { everyBytes } = { ...RECLAIM_DEFAULTS, ...options };
  if (!Number.isSafeInteger(everyBytes) || everyBytes <= 0) {
    throw new RangeError(`everyBytes: expected a positive whole number of bytes, got ${everyBytes}`);
  }
  if (collect === undefined) return { streamed() {} };
  let pending = 0;
  return {
    streamed(bytes) {
      pending += bytes;
      if (pending < everyBytes) return;
      pending = 0;
      collect();
    },
  };
}

/**
 * The runtime's young-generation collection when Node.js runs with `--expose-gc` (the chart's
 * `peili.nodeOptions` passes it), else undefined: without the flag, V8's own schedule applies.
 */
export function exposedYoungCollection(
  runtime: { gc?: NodeJS.GCFunction } = globalThis,
): CollectYoung | undefined {
  const gc = runtime.gc;
  return gc === undefined ? undefined : () => gc({ type: 'minor' });
}

/** One reclaimer for the whole process: every app's streams add up to the same garbage. */
export const processReclaimer: BufferReclaimer = createBufferReclaimer(exposedYoungCollection());
