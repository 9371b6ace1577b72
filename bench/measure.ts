// Small measuring tools shared by the scenarios: timed curl downloads, a resident-memory sampler
// over a daemon's /metrics, and a few formatters.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
import { parseMetrics } from '../e2e/peili-cluster.js';

const run = promisify(execFile);

/** One curl download: seconds from start to the last byte, and the bytes received. */
export interface Download {
  readonly seconds: number;
  readonly bytes: number;
  readonly status: number;
}

/**
 * Downloads `url` with curl into /dev/null (curl is the client for every data-plane figure, so
 * Peili, the Go registry and a plain file are read the same way).
 */
export async function curlDownload(url: string, headers: Record<string, string> = {}): Promise<Download> {
  const args = ['-s', '-o', '/dev/null', '-w', '%{time_total} %{size_download} %{http_code}'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  args.push(url);
  const { stdout } = await run('curl', args, { maxBuffer: 1024 * 1024 });
  const [seconds, bytes, status] = stdout.trim().split(' ').map(Number);
  return { seconds: seconds!, bytes: bytes!, status: status! };
}

/** `streams` parallel downloads of `url`: aggregate MiB/s (all bytes over the slowest time). */
export async function parallelThroughput(
  url: string,
  streams: number,
  expectedBytes: number,
  headers: Record<string, string> = {},
): Promise<number> {
  const started = performance.now();
  const downloads = await Promise.all(Array.from({ length: streams }, () => curlDownload(url, headers)));
  const seconds = (performance.now() - started) / 1000;
  for (const d of downloads) {
    if (d.bytes !== expectedBytes) {
      throw new Error(`${url}: got ${d.bytes} bytes (HTTP ${d.status}), expected ${expectedBytes}`);
    }
  }
  // curl's own time_total excludes process start; with several streams the wall time is fairer.
  const slowest = streams === 1 ? downloads[0]!.seconds : seconds;
  return (streams * expectedBytes) / 2 ** 20 / slowest;
}

/** Reads `peili_process_resident_memory_bytes` from a daemon's metrics endpoint. */
export async function residentBytes(metricsUrl: string): Promise<number> {
  const response = await fetch(`${metricsUrl}/metrics`);
  const samples = parseMetrics(await response.text());
  const value = samples.get('peili_process_resident_memory_bytes');
  if (value === undefined) throw new Error(`${metricsUrl}: no peili_process_resident_memory_bytes`);
  return value;
}

/** Samples `sample()` every `intervalMs` until `stop()` is called; returns every value. */
export function sampler(sample: () => Promise<number>, intervalMs: number): { stop(): Promise<number[]> } {
  const values: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        values.push(await sample());
      } catch {
        // a sample lost to a busy daemon is not a figure
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return values;
    },
  };
}

/** Bytes → MiB with one decimal. */
export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

/**
 * A bare Node.js HTTP server answering every request with `fs.createReadStream(path)` piped into
 * the response: the most a Node.js server can do here, to tell our code's cost from the runtime's.
 */
export async function startFileServer(
  path: string,
  host: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('startFileServer: no TCP address');
  return {
    url: `http://${host}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
