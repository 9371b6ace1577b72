// Digests of blobs relayed from peers. SHA-256 on this kind of CPU (no SHA instructions) runs at
// about 320 MiB/s, and it took half of a relaying daemon's busy time on its one JavaScript thread
// (BENCHMARKS.md, peer hop). Large blobs are therefore hashed on a worker thread, fed in batches
// while the event loop goes on moving bytes; small ones, where a message round trip would cost
// more than the hash, stay inline.
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** An incremental digest whose result may arrive later. */
export interface BlobHasher {
  /** Adds bytes; the chunk may be reused by the caller as soon as this returns. */
  update(chunk: Buffer): void;
  /** Bytes handed over but not hashed yet (only a worker lags behind). */
  readonly backlog: number;
  /** Calls `listener` once the backlog falls back to {@link BACKLOG_LOW} or below. */
  onDrain(listener: () => void): void;
  /** The hex digest of every byte added; no update after this. */
  digest(): Promise<string>;
  /** Drops the job (the stream was abandoned). */
  cancel(): void;
}

/** Above this many unhashed bytes the relay pauses its peer until the worker catches up. */
export const BACKLOG_HIGH = 2 * 1024 * 1024;
export const BACKLOG_LOW = 512 * 1024;
/** Blobs smaller than this are hashed inline. */
export const WORKER_MIN_SIZE = 1024 * 1024;
/** Bytes copied into one message to the worker. */
const BATCH_SIZE = 512 * 1024;
/** Batch buffers kept for reuse: one stream's full backlog and the batch being filled. */
const POOL_SIZE = BACKLOG_HIGH / BATCH_SIZE + 1;
/** An idle worker is stopped after this long, to give its memory back. */
const WORKER_IDLE_MS = 30_000;

/** Hashes `size` bytes with `algorithm`, on the worker thread when the blob is large enough. */
export function createBlobHasher(algorithm: string, size: number): BlobHasher {
  return size >= WORKER_MIN_SIZE ? hashThread().job(algorithm) : new InlineHasher(algorithm);
}

class InlineHasher implements BlobHasher {
  private readonly hash: Hash;
  readonly backlog = 0;
  constructor(algorithm: string) {
    this.hash = createHash(algorithm);
  }
  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }
  onDrain(listener: () => void): void {
    queueMicrotask(listener);
  }
  digest(): Promise<string> {
    return Promise.resolve(this.hash.digest('hex'));
  }
  cancel(): void {}
}

// The worker's code, evaluated as CommonJS: no file to resolve next to the compiled or the tsx-run
// sources. Messages: [id, algorithm] starts a job; [id, ArrayBuffer, length] adds the first
// `length` bytes and is answered with [id, length, ArrayBuffer], the buffer handed back for reuse
// (left to the worker's own garbage collector, batches piled up there: 80 MiB more resident
// relaying three blobs); [id, null] ends the job (answered with [id, hex]); [id, false] drops it.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', ([id, payload, length]) => {
  if (typeof payload === 'string') jobs.set(id, createHash(payload));
  else if (payload instanceof ArrayBuffer) {
    const hash = jobs.get(id);
    if (hash) hash.update(new Uint8Array(payload, 0, length));
    parentPort.postMessage([id, length, payload], [payload]);
  } else if (payload === null) {
    const hash = jobs.get(id);
    jobs.delete(id);
    if (hash) parentPort.postMessage([id, hash.digest('hex')]);
  } else jobs.delete(id);
});
`;

type WorkerReply = [id: number, value: number | string, returned?: ArrayBuffer];

/** The one hashing thread of the process, started on demand and stopped when idle. */
class HashThread {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, WorkerHasher>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly pool: ArrayBuffer[] = [];

  /** A batch buffer, reused when one came back from the worker. */
  takeBuffer(): Buffer {
    return Buffer.from(this.pool.pop() ?? new ArrayBuffer(BATCH_SIZE));
  }

  job(algorithm: string): WorkerHasher {
    const worker = this.start();
    const id = this.nextId++;
    const job = new WorkerHasher(id, this);
    this.jobs.set(id, job);
    clearTimeout(this.idleTimer);
    worker.postMessage([id, algorithm]);
    return job;
  }

  post(id: number, payload: ArrayBuffer | null | false, length?: number): void {
    if (payload instanceof ArrayBuffer) this.worker?.postMessage([id, payload, length], [payload]);
    else this.worker?.postMessage([id, payload]);
  }

  finished(id: number): void {
    this.jobs.delete(id);
    if (this.jobs.size > 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), WORKER_IDLE_MS);
    this.idleTimer.unref();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Plain CommonJS: none of the parent's loaders. Under tsx, inheriting them doubled the
      // worker's start (119 vs 60 ms of CPU), taken from lookups running beside the first relay.
      execArgv: [],
      // Its heap holds a few hash states; the bytes travel in transferred ArrayBuffers.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
    });
    worker.unref(); // never the reason the daemon stays up
    worker.on('message', ([id, value, returned]: WorkerReply) => {
      if (returned && this.pool.length < POOL_SIZE) this.pool.push(returned);
      this.jobs.get(id)?.reply(value);
    });
    const broken = (error: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const job of this.jobs.values()) job.abandon(error);
      this.jobs.clear();
    };
    worker.on('error', broken);
    worker.on('exit', (code) => broken(new Error(`hash worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private stop(): void {
    const worker = this.worker;
    if (!worker || this.jobs.size > 0) return;
    this.worker = undefined;
    this.pool.length = 0;
    void worker.terminate();
  }

  /** Stops the worker now; jobs still running fail (their streams end in an error). */
  async shutdown(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    const error = new Error('hash worker stopped');
    for (const job of this.jobs.values()) job.abandon(error);
    this.jobs.clear();
    this.pool.length = 0;
    await worker?.terminate();
  }
}

let thread: HashThread | undefined;
function hashThread(): HashThread {
  thread ??= new HashThread();
  return thread;
}

/** Stops the hashing worker, if one runs (at shutdown); jobs still running fail. */
export async function stopHashWorker(): Promise<void> {
  await thread?.shutdown();
}

class WorkerHasher implements BlobHasher {
  private batch: Buffer | undefined;
  private fill = 0;
  private pending = 0;
  private drainListeners: (() => void)[] = [];
  private result: { resolve(hex: string): void; reject(error: Error): void } | undefined;
  private failure: Error | undefined;
  private done = false;

  constructor(
    private readonly id: number,
    private readonly thread: HashThread,
  ) {}

  get backlog(): number {
    return this.pending + this.fill;
  }

  update(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      this.batch ??= this.thread.takeBuffer();
      const copied = chunk.copy(this.batch, this.fill, offset);
      this.fill += copied;
      offset += copied;
      if (this.fill === BATCH_SIZE) this.flush();
    }
  }

  onDrain(listener: () => void): void {
    if (this.backlog <= BACKLOG_LOW || this.failure) queueMicrotask(listener);
    else this.drainListeners.push(listener);
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    this.flush();
    this.done = true;
    return new Promise<string>((resolve, reject) => {
      this.result = { resolve, reject };
      this.thread.post(this.id, null);
    });
  }

  cancel(): void {
    if (this.failure || (this.done && !this.result)) return;
    this.thread.post(this.id, false);
    this.finish();
  }

  /** A message from the worker: bytes acknowledged, or the digest. */
  reply(value: number | string): void {
    if (typeof value === 'number') {
      this.pending -= value;
      if (this.pending + this.fill <= BACKLOG_LOW) this.wakeDrain();
      return;
    }
    const result = this.result;
    this.finish();
    result?.resolve(value);
  }

  /** The worker died: the bytes it had are lost, so this digest can never be given. */
  abandon(error: Error): void {
    this.failure = error;
    const result = this.result;
    this.result = undefined;
    result?.reject(error);
    this.wakeDrain();
  }

  private flush(): void {
    if (!this.batch || this.fill === 0) return;
    // The whole batch buffer is transferred (no copy); only its filled part is hashed.
    const length = this.fill;
    this.pending += length;
    const buffer = this.batch.buffer as ArrayBuffer;
    this.batch = undefined;
    this.fill = 0;
    this.thread.post(this.id, buffer, length);
  }

  private wakeDrain(): void {
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const listener of listeners) listener();
  }

  private finish(): void {
    this.done = true;
    this.result = undefined;
    this.thread.finished(this.id);
  }
}
