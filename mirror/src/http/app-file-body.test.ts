// The registry API serving blobs that the store reads from files (FileBody, as the containerd
// store does when the content directory is mounted): the response is written by the body itself,
// outside fastify's reply pipeline, so the bookkeeping around it is checked here.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { addAbortSignal } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createMetrics } from '../metrics/metrics.js';
import { createRegistryService } from '../registry/registry-service.js';
import type { BlobInfo, ContentStore, Digest, ReadRange } from '../store/content-store.js';
import { FileBody } from '../store/file-body.js';
import { buildApp } from './app.js';

const HOST = '127.0.3.3';
const MiB = 1024 * 1024;

describe('serving file-backed blobs', () => {
  const content = randomBytes(6 * MiB + 5);
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}` as Digest;
  let dir: string;
  let path: string;
  const opened: FileBody[] = [];
  let url: string;
  let registry: Registry;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'peili-app-file-'));
    path = join(dir, 'blob');
    writeFileSync(path, content);
    const info: BlobInfo = { digest, size: content.length, labels: {} };
    const store: ContentStore = {
      listImages: async () => [],
      getImage: async () => undefined,
      listContent: async () => [info],
      info: async (d: Digest) => (d === digest ? info : undefined),
      read: async (d: Digest, range?: ReadRange, signal?: AbortSignal) => {
        if (d !== digest) return undefined;
        const start = range?.offset ?? 0;
        const end = range?.length === undefined ? content.length : start + range.length;
        const body = new FileBody(await open(path), start, end);
        opened.push(body);
        // As the containerd store does: the request's abort destroys the body.
        return signal ? addAbortSignal(signal, body) : body;
      },
      subscribe: () => (async function* () {})(),
    };
    registry = new Registry();
    const metrics = createMetrics(registry, { defaultMetrics: false });
    const app = buildApp(
      { service: createRegistryService({ store, metrics }), metrics },
      { maxConcurrentRequests: 1 },
    );
    closeApp = () => app.close();
    server = app.server;
    await app.listen({ host: HOST, port: 0 });
    const address = app.server.address() as { port: number };
    url = `http://${HOST}:${address.port}/v2/library/app/blobs/${digest}?ns=docker.io`;
  });

  let closeApp: () => Promise<void> = async () => {};
  let server: Server;
  after(async () => {
    await closeApp();
    rmSync(dir, { recursive: true, force: true });
  });

  const fetchBody = (
    headers: Record<string, string> = {},
  ): Promise<{ response: IncomingMessage; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = get(url, { headers, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => resolve({ response, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      });
      req.on('error', reject);
    });

  const metric = async (name: string, labels: Record<string, string>): Promise<number | undefined> =>
    (await registry.getSingleMetric(name)?.get())?.values.find((v) =>
      Object.entries(labels).every(([k, value]) => v.labels[k] === value),
    )?.value;

  it('sends the whole blob with the registry headers, counted in the metrics', async () => {
    const { response, body } = await fetchBody();
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['content-length'], String(content.length));
    assert.equal(response.headers['docker-content-digest'], digest);
    assert.equal(response.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.ok(body.equals(content));
    assert.equal(await metric('peili_served_bytes_total', { source: 'local' }), content.length);
    assert.equal(await metric('peili_http_requests_total', { code: '200', method: 'GET' }), 1);
  });

  it('sends a range with 206 and Content-Range', async () => {
    const { response, body } = await fetchBody({ range: `bytes=${MiB}-${2 * MiB + 9}` });
    assert.equal(response.statusCode, 206);
    assert.equal(response.headers['content-range'], `bytes ${MiB}-${2 * MiB + 9}/${content.length}`);
    assert.ok(body.equals(content.subarray(MiB, 2 * MiB + 10)));
  });

  it('survives a client that leaves mid-blob: file closed, the request slot freed', async () => {
    // Resolves once the server saw the response close: every 'close' listener (the request
    // slot's included) has run by then, as they run in the same emit.
    const responseClosed = new Promise<void>((resolve) =>
      server.once('request', (_request, response: ServerResponse) => response.once('close', () => resolve())),
    );
    await new Promise<void>((resolve) => {
      const req = get(url, { agent: false }, (response) => {
        response.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
    });
    const body = opened.at(-1)!;
    if (!body.closed) await new Promise((resolve) => body.once('close', resolve));
    await responseClosed;
    // With one request slot, the next request is served only if the aborted one released it.
    const { response, body: bytes } = await fetchBody();
    assert.equal(response.statusCode, 200);
    assert.ok(bytes.equals(content));
  });
});
