import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import type { LookupOptions, PeerLocation, Router } from '../routing/router.js';
import type { Digest } from '../store/content-store.js';
import type { Clock } from '../clock/clock.js';
import { ManualClock } from '../../test-support/manual-clock.js';
import { createPeerSource, type PeerFetchOptions } from './peer-fetch.js';

const sha256 = (bytes: Uint8Array): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A router fake: a fixed table of holders per key, answered after `delay` ms (or never). */
function tableRouter(table: Record<string, PeerLocation[]>, delay = 0): Router & { lookups: string[] } {
  const lookups: string[] = [];
  return {
    lookups,
    ready: () => true,
    async *lookup(key: string, options: LookupOptions) {
      lookups.push(key);
      if (delay > 0) {
        try {
          await sleep(delay, undefined, { signal: options.signal });
        } catch {
          return;
        }
      }
      for (const peer of (table[key] ?? []).slice(0, options.count ?? 3)) {
        if (options.signal.aborted) return;
        yield peer;
      }
    },
    advertise: async () => {},
    withdraw: async () => {},
  };
}

/** How a test peer misbehaves. */
type Behaviour =
  | { kind: 'good' }
  | { kind: 'slow'; headersDelay: number }
  | { kind: 'corrupt' }
  | { kind: 'dies'; after: number }
  | { kind: 'stalls'; after: number }
  | { kind: 'error500' };

interface SeenRequest {
  method: string;
  url: string;
  range: string | undefined;
  mirrored: string | undefined;
  signature: string | undefined;
}

interface Content {
  manifests: Map<string, { body: Buffer; mediaType: string; digest: Digest }>;
  blobs: Map<string, Buffer>;
}

/** A real HTTP peer on 127.0.6.x serving `content` with the given behaviour. */
class TestPeer {
  readonly seen: SeenRequest[] = [];
  written = 0;
  /** A response is waiting for its connection to drain (the client stopped reading). */
  blocked = false;
  /** TCP connections accepted so far (keep-alive reuse keeps this low). */
  connections = 0;
  private server: Server | undefined;
  location!: PeerLocation;

  constructor(
    readonly name: string,
    private readonly host: string,
    readonly behaviour: Behaviour,
    private readonly content: Content,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', () => this.connections++);
    await new Promise<void>((resolve) => this.server!.listen(0, this.host, resolve));
    const { port } = this.server.address() as { port: number };
    this.location = { id: this.name, registryUrl: `http://${this.host}:${port}` };
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    this.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      range: req.headers.range,
      mirrored: req.headers['x-peili-mirrored'] as string | undefined,
      signature: req.headers['x-test-signature'] as string | undefined,
    });
    const b = this.behaviour;
    if (b.kind === 'slow') await sleep(b.headersDelay);
    if (b.kind === 'error500') {
      res.writeHead(500).end();
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const [, , kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'manifests') {
      const manifest = this.content.manifests.get(ref);
      if (!manifest) {
        res.writeHead(404).end();
        return;
      }
      const body = b.kind === 'corrupt' ? Buffer.concat([manifest.body, Buffer.from(' ')]) : manifest.body;
      res.writeHead(200, {
        'Content-Type': manifest.mediaType,
        'Content-Length': body.length,
        'Docker-Content-Digest': manifest.digest,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const blob = this.content.blobs.get(ref);
    if (!blob) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    let end = blob.length - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), blob.length - 1) : blob.length - 1;
      status = 206;
    }
    const headers: Record<string, string | number> = { 'Content-Length': end - start + 1 };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${blob.length}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let body = blob.subarray(start, end + 1);
    if (b.kind === 'corrupt') {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    let limit = body.length;
    if (b.kind === 'dies' || b.kind === 'stalls') limit = Math.min(limit, b.after);
    // Write in chunks, honouring backpressure, so `written` shows how far the consumer pulled.
    const chunk = 64 * 1024;
    for (let offset = 0; offset < limit; offset += chunk) {
      const piece = body.subarray(offset, Math.min(offset + chunk, limit));
      this.written += piece.length;
      if (!res.write(piece)) {
        this.blocked = true;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            this.blocked = false;
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
      if (res.destroyed) return;
    }
    if (b.kind === 'dies' && limit < body.length) {
      // Dies after its bytes left: once the writes are flushed to the socket (Node 22+ would
      // otherwise drop what is still queued in the stream when the socket is destroyed).
      await new Promise<void>((resolve) => res.write('', () => resolve()));
      res.socket?.destroy();
      return;
    }
    if (b.kind === 'stalls' && limit < body.length) return; // keeps the connection open, sends nothing more
    res.end();
  }
}

/**
 * Resolves once `peer` makes no more progress: it finished writing, or it waits for a drain and
 * wrote nothing more over a few turns of the event loop (client and peer share this process, so a
 * client still reading would drain it within a turn). No wall-clock time involved.
 */
async function untilIdle(peer: TestPeer, total: number): Promise<void> {
  for (;;) {
    const before = peer.written;
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    if (peer.written >= total || (peer.blocked && peer.written === before)) return;
  }
}

/** Reads a stream to its end; rejects when it errors, and records whether 'end' fired. */
async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function counter(metrics: Metrics, labels: { operation: string; reason: string }): Promise<number> {
  const data = await metrics.peerErrors.get();
  const hit = data.values.find(
    (v) => v.labels.operation === labels.operation && v.labels.reason === labels.reason,
  );
  return hit?.value ?? 0;
}

describe('createPeerSource', () => {
  const manifestBody = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] }),
  );
  const manifestDigest = sha256(manifestBody);
  const indexBody = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
  const indexDigest = sha256(indexBody);
  const notManifestBody = Buffer.from('["not", "a", "manifest"]');
  const notManifestDigest = sha256(notManifestBody);
  const blob = randomBytes(1024 * 1024 + 17);
  const blobDigest = sha256(blob);
  const bigBlob = randomBytes(32 * 1024 * 1024);
  const bigDigest = sha256(bigBlob);
  const content: Content = {
    manifests: new Map([
      [
        manifestDigest,
        {
          body: manifestBody,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
        },
      ],
      [
        '1.27',
        {
          body: manifestBody,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
        },
      ],
      // A peer that labels an index as plain JSON: the media type comes from the body.
      [indexDigest, { body: indexBody, mediaType: 'application/json', digest: indexDigest }],
      [
        notManifestDigest,
        { body: notManifestBody, mediaType: 'application/json', digest: notManifestDigest },
      ],
    ]),
    blobs: new Map([
      [blobDigest, blob],
      [bigDigest, bigBlob],
    ]),
  };

  const peers: Record<string, TestPeer> = {};
  let silent: TcpServer;
  let silentSockets: Socket[] = [];
  let silentPeer: PeerLocation;
  let refusedPeer: PeerLocation;

  before(async () => {
    const specs: [string, string, Behaviour][] = [
      ['good', '127.0.6.1', { kind: 'good' }],
      ['good2', '127.0.6.2', { kind: 'good' }],
      ['slow', '127.0.6.3', { kind: 'slow', headersDelay: 1_500 }],
      ['corrupt', '127.0.6.4', { kind: 'corrupt' }],
      ['dies', '127.0.6.5', { kind: 'dies', after: 300_000 }],
      ['stalls', '127.0.6.6', { kind: 'stalls', after: 200_000 }],
      ['error500', '127.0.6.7', { kind: 'error500' }],
    ];
    for (const [name, host, behaviour] of specs)
      peers[name] = await new TestPeer(name, host, behaviour, content).start();
    // Accepts TCP connections and never answers.
    silent = createTcpServer((socket) => {
      silentSockets.push(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.6.8', resolve));
    silentPeer = {
      id: 'silent',
      registryUrl: `http://127.0.6.8:${(silent.address() as { port: number }).port}`,
    };
    // A port that was open and is closed again: connections are refused.
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.6.9', resolve));
    refusedPeer = {
      id: 'refused',
      registryUrl: `http://127.0.6.9:${(probe.address() as { port: number }).port}`,
    };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  after(async () => {
    await Promise.all(Object.values(peers).map((p) => p.close()));
    for (const s of silentSockets) s.destroy();
    silentSockets = [];
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  const setup = (
    table: Record<string, (PeerLocation | string)[]>,
    options: PeerFetchOptions = {},
    routerDelay = 0,
    clock?: Clock,
  ): {
    source: ReturnType<typeof createPeerSource>;
    metrics: Metrics;
    router: ReturnType<typeof tableRouter>;
  } => {
    const resolved: Record<string, PeerLocation[]> = {};
    for (const [key, list] of Object.entries(table)) {
      resolved[key] = list.map((p) => (typeof p === 'string' ? peers[p]!.location : p));
    }
    for (const p of Object.values(peers)) p.seen.length = 0;
    const metrics = createMetrics(new Registry(), { defaultMetrics: false });
    const router = tableRouter(resolved, routerDelay);
    return { source: createPeerSource({ router, metrics, clock }, options), metrics, router };
  };
  const signal = (): AbortSignal => AbortSignal.timeout(10_000);

  describe('manifest', () => {
    it('fetches by digest, verified, with the loop guard, ns and the signer headers', async () => {
      const { router, metrics } = setup({ [manifestDigest]: ['good'] });
      const sign = (r: { method: string; url: string; body: string }): Record<string, string> => ({
        'X-Test-Signature': `${r.method} ${r.url} ${r.body.length}`,
      });
      const source = createPeerSource({ router, metrics, sign });
      const got = await source.manifest(
        { registry: 'docker.io', repository: 'library/app', reference: manifestDigest },
        signal(),
      );
      assert.deepEqual(got, {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: manifestDigest,
        body: manifestBody,
        peerId: 'good',
      });
      assert.deepEqual(peers.good!.seen, [
        {
          method: 'GET',
          url: `/v2/library/app/manifests/${manifestDigest}?ns=docker.io`,
          range: undefined,
          mirrored: 'true',
          signature: `GET /v2/library/app/manifests/${manifestDigest}?ns=docker.io 0`,
        },
      ]);
      assert.equal(source.servedFromPeer(manifestDigest), true);
      assert.equal(source.servedFromPeer(indexDigest), false);
    });

    it('looks tags up by image name and verifies against Docker-Content-Digest', async () => {
      const { source, router } = setup({ 'docker.io/library/nginx:1.27': ['good'] });
      const got = await source.manifest(
        { registry: 'docker.io', repository: 'nginx', reference: '1.27' },
        signal(),
      );
      assert.equal(got?.digest, manifestDigest);
      assert.deepEqual(router.lookups, ['docker.io/library/nginx:1.27']);
      assert.equal(peers.good!.seen[0]?.url, '/v2/nginx/manifests/1.27?ns=docker.io');
    });

    const keys: [string, string, string, string][] = [
      ['docker.io', 'nginx', '1.27', 'docker.io/library/nginx:1.27'],
      ['index.docker.io', 'nginx', 'latest', 'docker.io/library/nginx:latest'],
      ['docker.io', 'library/nginx', '1.27', 'docker.io/library/nginx:1.27'],
      ['docker.io', 'bitnami/redis', '7', 'docker.io/bitnami/redis:7'],
      ['ghcr.io', 'app', 'v1', 'ghcr.io/app:v1'],
      ['127.0.0.1:5000', 'test/app', 'v1', '127.0.0.1:5000/test/app:v1'],
    ];
    for (const [registry, repository, tag, key] of keys) {
      it(`looks ${registry} + ${repository} + ${tag} up as ${key}`, async () => {
        const { source, router } = setup({});
        assert.equal(await source.manifest({ registry, repository, reference: tag }, signal()), undefined);
        assert.deepEqual(router.lookups, [key]);
      });
    }

    it('asks peers without ns when the request had none', async () => {
      const { source } = setup({ [manifestDigest]: ['good'] });
      const got = await source.manifest(
        { registry: '', repository: 'test/app', reference: manifestDigest },
        signal(),
      );
      assert.equal(got?.digest, manifestDigest);
      assert.equal(peers.good!.seen[0]?.url, `/v2/test/app/manifests/${manifestDigest}`);
    });

    it('rejects a verified body that is no manifest when the peer names no media type', async () => {
      const { source, metrics } = setup({ [notManifestDigest]: ['good'] });
      const got = await source.manifest(
        { registry: 'docker.io', repository: 'library/app', reference: notManifestDigest },
        signal(),
      );
      assert.equal(got, undefined);
      assert.equal(await counter(metrics, { operation: 'manifest', reason: 'invalid' }), 1);
    });

    it('takes the media type from the body when the peer says application/json', async () => {
      const { source } = setup({ [indexDigest]: ['good'] });
      const got = await source.manifest(
        { registry: '127.0.0.1:5000', repository: 'test/app', reference: indexDigest },
        signal(),
      );
      assert.equal(got?.mediaType, 'application/vnd.oci.image.index.v1+json');
      assert.equal(peers.good!.seen[0]?.url, `/v2/test/app/manifests/${indexDigest}?ns=127.0.0.1%3A5000`);
    });

    it('rejects a corrupt manifest, cools the peer down and uses the next holder', async () => {
      const { source, metrics } = setup({ [manifestDigest]: ['corrupt', 'good'] });
      const request = { registry: 'docker.io', repository: 'library/app', reference: manifestDigest };
      const got = await source.manifest(request, signal());
      assert.equal(got?.peerId, 'good');
      assert.equal(await counter(metrics, { operation: 'manifest', reason: 'digest' }), 1);
      // Cooling down: the corrupt peer is not asked again while another holder exists.
      peers.corrupt!.seen.length = 0;
      assert.equal((await source.manifest(request, signal()))?.peerId, 'good');
      assert.equal(peers.corrupt!.seen.length, 0);
    });

    it('answers undefined when the only holder serves a corrupt manifest', async () => {
      const { source, metrics } = setup({ [manifestDigest]: ['corrupt'] });
      const got = await source.manifest(
        { registry: 'docker.io', repository: 'library/app', reference: manifestDigest },
        signal(),
      );
      assert.equal(got, undefined);
      assert.equal(await counter(metrics, { operation: 'manifest', reason: 'digest' }), 1);
    });

    it('is bounded by the headers timeout with a silent peer', async () => {
      const { source, metrics } = setup({ [manifestDigest]: [silentPeer, 'good'] }, { headersTimeout: 300 });
      const began = performance.now();
      const got = await source.manifest(
        { registry: 'docker.io', repository: 'library/app', reference: manifestDigest },
        signal(),
      );
      const elapsed = performance.now() - began;
      assert.equal(got?.peerId, 'good');
      assert.ok(elapsed >= 290 && elapsed < 1_500, `took ${elapsed} ms`);
      assert.equal(await counter(metrics, { operation: 'manifest', reason: 'timeout' }), 1);
    });

    it('gives up on a silent only holder within the headers timeout', async () => {
      const { source } = setup({ [manifestDigest]: [silentPeer] }, { headersTimeout: 100 });
      const began = performance.now();
      const got = await source.manifest(
        { registry: 'docker.io', repository: 'library/app', reference: manifestDigest },
        signal(),
      );
      assert.equal(got, undefined);
      assert.ok(performance.now() - began < 1_000);
    });

    const failing: { name: string; holder: () => PeerLocation | string; reason: string }[] = [
      { name: 'refused', holder: () => refusedPeer, reason: 'refused' },
      { name: '500', holder: () => 'error500', reason: 'status' },
    ];
    for (const f of failing) {
      it(`counts a ${f.name} peer as ${f.reason} and falls back to the next holder`, async () => {
        const { source, metrics } = setup({ [manifestDigest]: [f.holder(), 'good'] });
        const got = await source.manifest(
          { registry: 'docker.io', repository: 'library/app', reference: manifestDigest },
          signal(),
        );
        assert.equal(got?.peerId, 'good');
        assert.equal(await counter(metrics, { operation: 'manifest', reason: f.reason }), 1);
      });
    }

    it('cools a failing peer down exponentially while another holder exists', async () => {
      // Cool-downs on a manual clock: no other timer matters here (both peers answer at once).
      const clock = new ManualClock();
      const { source, metrics } = setup(
        { [manifestDigest]: ['error500', 'good'] },
        { coolDownBase: 300, coolDownMax: 10_000 },
        0,
        clock,
      );
      const request = { registry: 'docker.io', repository: 'library/app', reference: manifestDigest };
      // [wait before the call in ms, whether error500 is asked]: cool-downs of 300 ms, then 600 ms.
      const steps: [number, boolean][] = [
        [0, true],
        [0, false],
        [350, true],
        [350, false],
        [300, true],
      ];
      let asked = 0;
      for (const [index, [wait, expected]] of steps.entries()) {
        clock.advance(wait);
        assert.equal((await source.manifest(request, signal()))?.peerId, 'good');
        if (expected) asked++;
        assert.equal(peers.error500!.seen.length, asked, `step ${index}`);
      }
      assert.equal(await counter(metrics, { operation: 'manifest', reason: 'status' }), asked);
    });

    it('still asks a cooling peer when it is the only holder', async () => {
      const { source, metrics } = setup({ [manifestDigest]: ['error500'] }, { coolDownBase: 60_000 });
      const request = { registry: 'docker.io', repository: 'library/app', reference: manifestDigest };
      assert.equal(await source.manifest(request, signal()), undefined);
      assert.equal(await source.manifest(request, signal()), undefined);
      assert.equal(peers.error500!.seen.length, 2);
      assert.equal(await counter(metrics, { operation: 'manifest', reason: 'status' }), 2);
    });

    it('counts a 404 without cooling the peer down', async () => {
      const missing = sha256(Buffer.from('missing'));
      const { source, metrics } = setup({ [missing]: ['good'], [manifestDigest]: ['good', 'good2'] });
      const request = { registry: 'docker.io', repository: 'library/app', reference: missing };
      assert.equal(await source.manifest(request, signal()), undefined);
      assert.equal(await counter(metrics, { operation: 'manifest', reason: 'notfound' }), 1);
      // Had `good` been cooled down, `good2` would have served this one.
      assert.equal(
        (await source.manifest({ ...request, reference: manifestDigest }, signal()))?.peerId,
        'good',
      );
    });

    it('rejects a tag answer without Docker-Content-Digest', async () => {
      const bare = createServer((_req, res) => {
        res
          .writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' })
          .end(manifestBody);
      });
      await new Promise<void>((resolve) => bare.listen(0, '127.0.6.10', resolve));
      try {
        const location = {
          id: 'bare',
          registryUrl: `http://127.0.6.10:${(bare.address() as { port: number }).port}`,
        };
        const { source, metrics } = setup({ 'ghcr.io/org/app:v1': [location] });
        const got = await source.manifest(
          { registry: 'ghcr.io', repository: 'org/app', reference: 'v1' },
          signal(),
        );
        assert.equal(got, undefined);
        assert.equal(await counter(metrics, { operation: 'manifest', reason: 'digest' }), 1);
      } finally {
        bare.closeAllConnections();
        await new Promise<void>((resolve) => bare.close(() => resolve()));
      }
    });

    const noHolders: { name: string; routerDelay: number }[] = [
      { name: 'the router knows no holder', routerDelay: 0 },
      { name: 'the router is slower than the budget', routerDelay: 1_000 },
    ];
    for (const c of noHolders) {
      it(`answers undefined within the lookup budget when ${c.name}`, async () => {
        const { source } = setup(
          { [manifestDigest]: ['good'], other: [] },
          { lookupTimeout: 20 },
          c.routerDelay,
        );
        const began = performance.now();
        const reference = c.routerDelay === 0 ? sha256(Buffer.from('nobody')) : manifestDigest;
        const got = await source.manifest(
          { registry: 'docker.io', repository: 'library/app', reference },
          signal(),
        );
        const elapsed = performance.now() - began;
        assert.equal(got, undefined);
        assert.ok(elapsed < 500, `took ${elapsed} ms`);
        assert.equal(peers.good!.seen.length, 0);
      });
    }
  });

  describe('blobSize', () => {
    it('answers the Content-Length of a HEAD, hedging past a silent peer', async () => {
      // Without hedging, the silent peer would hold the answer for the whole headers timeout.
      const { source } = setup(
        { [blobDigest]: [silentPeer, 'good'] },
        { headersTimeout: 3_000, hedging: { initial: 20 } },
      );
      const began = performance.now();
      const size = await source.blobSize(
        { registry: 'docker.io', repository: 'library/app', digest: blobDigest },
        signal(),
      );
      assert.equal(size, blob.length);
      assert.ok(performance.now() - began < 1_500);
      assert.deepEqual(
        peers.good!.seen.map((s) => s.method),
        ['HEAD'],
      );
    });

    it('is undefined when no holder has it', async () => {
      const missing = sha256(Buffer.from('none'));
      const { source } = setup({ [missing]: ['good'] });
      assert.equal(
        await source.blobSize(
          { registry: 'docker.io', repository: 'library/app', digest: missing },
          signal(),
        ),
        undefined,
      );
    });
  });

  describe('blob', () => {
    const request = { registry: 'docker.io', repository: 'library/app', digest: blobDigest };

    it('streams a whole blob, verified', async () => {
      const { source, metrics } = setup({ [blobDigest]: ['good'] });
      const got = await source.blob(request, signal());
      assert.ok(got);
      assert.deepEqual(
        { size: got.size, range: got.range, peerId: got.peerId },
        {
          size: blob.length,
          range: { start: 0, end: blob.length - 1 },
          peerId: 'good',
        },
      );
      assert.ok((await collect(got.stream)).equals(blob));
      assert.equal((await metrics.peerFetchedBytes.get()).values[0]?.value, blob.length);
      assert.deepEqual(
        peers.good!.seen.map((s) => [s.method, s.url, s.range, s.mirrored]),
        [['GET', `/v2/library/app/blobs/${blobDigest}?ns=docker.io`, undefined, 'true']],
      );
      assert.equal(source.servedFromPeer(blobDigest), true);
    });

    it('keeps one connection per peer across whole blobs, ranges, HEADs and manifests', async () => {
      const { source } = setup({ [blobDigest]: ['good'], [manifestDigest]: ['good'] });
      const before = peers.good!.connections;
      for (let i = 0; i < 5; i++) {
        const got = await source.blob(request, signal());
        assert.ok(got && (await collect(got.stream)).equals(blob));
        const part = await source.blob({ ...request, range: { start: 5, end: 70_000 } }, signal());
        assert.ok(part && (await collect(part.stream)).equals(blob.subarray(5, 70_001)));
        assert.equal(await source.blobSize(request, signal()), blob.length);
        const manifest = await source.manifest(
          { registry: 'docker.io', repository: 'library/app', reference: manifestDigest },
          signal(),
        );
        assert.equal(manifest?.digest, manifestDigest);
      }
      // Responses are read to their end (HEADs drained) rather than cut, so their sockets go back
      // to the pool: 20 sequential requests, at most a second socket opened while one drains.
      assert.ok(peers.good!.connections - before <= 2, `${peers.good!.connections - before} connections`);
    });

    const ranges: { start: number; end?: number }[] = [
      { start: 0, end: 0 },
      { start: 1000, end: 500_000 },
      { start: 1000 },
      { start: blob.length - 1 },
      { start: 10, end: blob.length * 2 },
    ];
    for (const range of ranges) {
      it(`streams exactly the range ${range.start}-${range.end ?? ''}`, async () => {
        const { source } = setup({ [blobDigest]: ['good'] });
        const got = await source.blob({ ...request, range }, signal());
        assert.ok(got);
        const end = Math.min(range.end ?? blob.length - 1, blob.length - 1);
        assert.deepEqual(got.range, { start: range.start, end });
        assert.ok((await collect(got.stream)).equals(blob.subarray(range.start, end + 1)));
        assert.equal(peers.good!.seen[0]?.range, `bytes=${range.start}-${range.end ?? ''}`);
      });
    }

    it('hedging picks the fast peer over a slow one', async () => {
      const { source } = setup(
        { [blobDigest]: ['slow', 'good'] },
        { blobHeadersTimeout: 3_000, hedging: { initial: 30 } },
      );
      const began = performance.now();
      const got = await source.blob(request, signal());
      const elapsed = performance.now() - began;
      assert.equal(got?.peerId, 'good');
      assert.ok(elapsed < 1_000, `took ${elapsed} ms`);
      assert.ok((await collect(got.stream)).equals(blob));
      // The slow peer was asked at most once; on a loaded machine the hedge may cancel that request
      // before the slow server has even recorded it.
      assert.ok(peers.slow!.seen.length <= 1);
    });

    it('does not hedge when the first peer answers within the delay', async () => {
      const { source } = setup({ [blobDigest]: ['good', 'good2'] }, { hedging: { initial: 500 } });
      const got = await source.blob(request, signal());
      assert.equal(got?.peerId, 'good');
      await collect(got.stream);
      assert.equal(peers.good2!.seen.length, 0);
    });

    const breaks: {
      name: string;
      first: string;
      firstReason: string;
      range?: { start: number; end?: number };
    }[] = [
      { name: 'dies mid-stream', first: 'dies', firstReason: 'broken' },
      { name: 'stalls mid-stream', first: 'stalls', firstReason: 'stall' },
      { name: 'dies mid-range', first: 'dies', firstReason: 'broken', range: { start: 5_000, end: 900_000 } },
    ];
    for (const b of breaks) {
      it(`resumes from the next holder when a peer ${b.name}, as one continuous stream`, async () => {
        // No hedging here (a fixed 2 s delay): the breaking peer must be the one serving.
        const { source, metrics } = setup(
          { [blobDigest]: [b.first, 'good'] },
          { idleTimeout: 150, hedging: { min: 2_000, max: 2_000 } },
        );
        const got = await source.blob({ ...request, range: b.range }, signal());
        assert.equal(got?.peerId, b.first);
        const start = b.range?.start ?? 0;
        const end = b.range?.end ?? blob.length - 1;
        const bytes = await collect(got.stream);
        assert.equal(bytes.length, end - start + 1);
        assert.ok(bytes.equals(blob.subarray(start, end + 1)), 'byte-identical');
        const resumedAt = start + (peers[b.first]!.behaviour as { after: number }).after;
        assert.deepEqual(
          peers.good!.seen.map((s) => s.range),
          [`bytes=${resumedAt}-${end}`],
        );
        assert.equal(await counter(metrics, { operation: 'blob', reason: b.firstReason }), 1);
      });
    }

    it('errors the stream (never ends cleanly) when the blob is corrupt', async () => {
      const { source, metrics } = setup({ [blobDigest]: ['corrupt'] });
      const got = await source.blob(request, signal());
      assert.ok(got);
      let ended = false;
      got.stream.on('end', () => (ended = true));
      await assert.rejects(collect(got.stream), {
        message: `blob ${blobDigest} from peers does not match its digest`,
      });
      assert.equal(ended, false);
      assert.equal(await counter(metrics, { operation: 'blob', reason: 'digest' }), 1);
    });

    it('errors the stream when every holder breaks', async () => {
      const { source } = setup({ [blobDigest]: ['dies', 'stalls'] }, { idleTimeout: 100 });
      const got = await source.blob(request, signal());
      assert.ok(got);
      let ended = false;
      got.stream.on('end', () => (ended = true));
      await assert.rejects(collect(got.stream), {
        // `dies` sends 300 000 bytes, then `stalls` sends 200 000 more from there and goes quiet.
        message: `blob ${blobDigest}: every peer failed at byte 500000 of ${blob.length}`,
      });
      assert.equal(ended, false);
    });

    it('is undefined, fast, when no holder answers', async () => {
      const { source } = setup({ [blobDigest]: [refusedPeer, 'error500'] });
      const began = performance.now();
      assert.equal(await source.blob(request, signal()), undefined);
      assert.ok(performance.now() - began < 1_000);
    });

    it('is undefined within the lookup budget when there is no holder', async () => {
      const { source } = setup({}, { lookupTimeout: 20 }, 5_000);
      const began = performance.now();
      assert.equal(await source.blob(request, signal()), undefined);
      assert.ok(performance.now() - began < 500);
    });

    it('hedges past a silent peer', async () => {
      const { source } = setup(
        { [blobDigest]: [silentPeer, 'good'] },
        { blobHeadersTimeout: 3_000, hedging: { initial: 20 } },
      );
      const began = performance.now();
      const got = await source.blob(request, signal());
      assert.equal(got?.peerId, 'good');
      assert.ok(performance.now() - began < 1_500);
      assert.ok((await collect(got.stream)).equals(blob));
    });

    it('applies backpressure: a stream its consumer stops reading does not pull the whole blob', async () => {
      const { source } = setup({ [bigDigest]: ['good'] });
      peers.good!.written = 0;
      // A ranged read (the whole blob): nothing is hashed, so the only thing that can pause the
      // peer is the consumer. (A verified read also pauses while the hashing worker catches up,
      // which would let this test pass without backpressure.)
      const range = { start: 0, end: bigBlob.length - 1 };
      const got = await source.blob({ ...request, digest: bigDigest, range }, signal());
      assert.ok(got);
      // The consumer starts reading (the stream fills its buffer), then reads nothing more.
      const onReadable = (): void => {};
      got.stream.on('readable', onReadable);
      await once(got.stream, 'readable');
      // Without backpressure the peer would write all 32 MiB: wait until it stops.
      await untilIdle(peers.good!, bigBlob.length);
      const pulled = peers.good!.written;
      assert.ok(pulled < bigBlob.length / 2, `peer wrote ${pulled} bytes to a reader that stopped reading`);
      got.stream.off('readable', onReadable);
      assert.ok((await collect(got.stream)).equals(bigBlob));
    });

    it('destroys the stream when the caller aborts', async () => {
      const controller = new AbortController();
      const { source } = setup({ [bigDigest]: ['good'] });
      const got = await source.blob({ ...request, digest: bigDigest }, controller.signal);
      assert.ok(got);
      controller.abort(new Error('client went away'));
      await assert.rejects(collect(got.stream), { message: 'client went away' });
    });
  });
});
