import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createMetrics } from '../metrics/metrics.js';
import { digestOf } from '../oci/digest.js';
import type { PeerBlob, PeerManifest, PeerSource } from '../registry/peer-source.js';
import { createRegistryService, type RegistryService } from '../registry/registry-service.js';
import type { ContentStore, Digest } from '../store/content-store.js';
import { MemoryStore } from '../../test-support/memory-store.js';
import { buildApp, type AppOptions } from './app.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const JSON_TYPE = 'application/json; charset=utf-8';
const API_VERSION = 'registry/2.0';
const HOST = '127.0.3.1';

/** Records every store call, so tests can prove a bad request never reached the store. */
function spyStore(store: ContentStore, calls: string[], overrides: Partial<ContentStore> = {}): ContentStore {
  const record =
    <A extends unknown[], R>(name: string, fn: (...args: A) => R) =>
    (...args: A): R => {
      calls.push(`${name} ${String(args[0] ?? '')}`.trim());
      return fn(...args);
    };
  return {
    listImages: record('listImages', overrides.listImages ?? store.listImages.bind(store)),
    getImage: record('getImage', overrides.getImage ?? store.getImage.bind(store)),
    info: record('info', overrides.info ?? store.info.bind(store)),
    listContent: record('listContent', overrides.listContent ?? store.listContent.bind(store)),
    read: record('read', overrides.read ?? store.read.bind(store)),
    subscribe: (signal) => store.subscribe(signal),
  };
}

/** A PeerSource fake serving one blob and one tag; records calls. */
class FakePeers implements PeerSource {
  readonly calls: string[] = [];
  constructor(
    readonly blobs: Map<Digest, Buffer>,
    readonly manifests: Map<string, PeerManifest>,
  ) {}
  async manifest(request: { reference: string }): Promise<PeerManifest | undefined> {
    this.calls.push(`manifest ${request.reference}`);
    return this.manifests.get(request.reference);
  }
  async blobSize(request: { digest: Digest }): Promise<number | undefined> {
    this.calls.push(`blobSize ${request.digest}`);
    return this.blobs.get(request.digest)?.length;
  }
  async blob(request: { digest: Digest }): Promise<PeerBlob | undefined> {
    this.calls.push(`blob ${request.digest}`);
    const bytes = this.blobs.get(request.digest);
    return (
      bytes && {
        size: bytes.length,
        range: { start: 0, end: bytes.length - 1 },
        stream: Readable.from([bytes]),
        peerId: 'p',
      }
    );
  }
}

interface Fixture {
  app: ReturnType<typeof buildApp>;
  storeCalls: string[];
  peers: FakePeers;
  registry: Registry;
  logs: Array<Record<string, unknown>>;
  image: ReturnType<MemoryStore['addOciImage']>;
  layer: Buffer;
  layerDigest: Digest;
  peerBlob: Buffer;
  peerDigest: Digest;
}

const LAYER = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

function fixture(
  options: {
    overrides?: Partial<ContentStore>;
    service?: RegistryService;
    app?: AppOptions;
    mirrored?: string[];
  } = {},
): Fixture {
  const store = new MemoryStore();
  const image = store.addOciImage('docker.io/library/nginx:1.27', { layers: [LAYER] });
  const storeCalls: string[] = [];
  const peerBlob = Buffer.from('from a peer');
  const peerDigest = digestOf(peerBlob);
  const peerManifestBody = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }),
  );
  const peers = new FakePeers(
    new Map([[peerDigest, peerBlob]]),
    new Map([
      [
        '2.0',
        { mediaType: OCI_MANIFEST, digest: digestOf(peerManifestBody), body: peerManifestBody, peerId: 'p' },
      ],
    ]),
  );
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  const logs: Array<Record<string, unknown>> = [];
  const service =
    options.service ??
    createRegistryService(
      { store: spyStore(store, storeCalls, options.overrides), peers, metrics },
      { mirroredRegistries: options.mirrored ?? [] },
    );
  const app = buildApp(
    {
      service,
      metrics,
      logger: {
        level: 'debug',
        stream: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
      },
    },
    options.app,
  );
  after(() => app.close());
  return {
    app,
    storeCalls,
    peers,
    registry,
    logs,
    image,
    layer: LAYER,
    layerDigest: digestOf(LAYER),
    peerBlob,
    peerDigest,
  };
}

/** The headers a test asserts exactly (date and connection vary). */
function headersOf(res: { headers: Record<string, unknown> }): Record<string, unknown> {
  const { date: _date, connection: _connection, ...rest } = res.headers;
  return rest;
}

function errorBody(code: string, message: string, detail?: unknown): string {
  return JSON.stringify({ errors: [detail === undefined ? { code, message } : { code, message, detail }] });
}

async function counterValues(registry: Registry, name: string): Promise<string[]> {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((v) => v.value !== 0 || name.endsWith('inflight'))
    .map(
      (v) =>
        `${Object.entries(v.labels)
          .map(([k, l]) => `${k}=${String(l)}`)
          .join(',')} ${v.value}`,
    )
    .sort();
}

describe('GET|HEAD /v2/', () => {
  for (const method of ['GET', 'HEAD'] as const) {
    it(`${method} answers 200 with the API version header`, async () => {
      const { app } = fixture();
      const res = await app.inject({ method, url: '/v2/' });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(headersOf(res), {
        'docker-distribution-api-version': API_VERSION,
        'content-type': JSON_TYPE,
        'content-length': '2',
      });
      assert.equal(res.body, method === 'GET' ? '{}' : '');
    });
  }
});

describe('manifests', () => {
  const urls: Array<[name: string, url: (f: Fixture) => string]> = [
    ['by tag with ns', () => '/v2/nginx/manifests/1.27?ns=docker.io'],
    ['by tag with library/ and an alias ns', () => '/v2/library/nginx/manifests/1.27?ns=index.docker.io'],
    ['by tag without ns (one registry holds it)', () => '/v2/nginx/manifests/1.27'],
    ['by digest', (f) => `/v2/nginx/manifests/${f.image.manifest.digest}?ns=docker.io`],
    ['by digest with an empty ns', (f) => `/v2/nginx/manifests/${f.image.manifest.digest}?ns=`],
  ];
  for (const [name, url] of urls) {
    for (const method of ['GET', 'HEAD'] as const) {
      it(`${method} ${name} → 200 with the manifest's headers`, async () => {
        const f = fixture();
        const res = await f.app.inject({ method, url: url(f) });
        assert.equal(res.statusCode, 200);
        assert.deepEqual(headersOf(res), {
          'docker-distribution-api-version': API_VERSION,
          'content-type': OCI_MANIFEST,
          'content-length': String(f.image.manifestBytes.length),
          'docker-content-digest': f.image.manifest.digest,
        });
        assert.equal(res.body, method === 'GET' ? f.image.manifestBytes.toString() : '');
      });
    }
  }

  it('serves a peer manifest on a local miss', async () => {
    const f = fixture();
    const res = await f.app.inject({ method: 'GET', url: '/v2/nginx/manifests/2.0?ns=docker.io' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], OCI_MANIFEST);
    assert.deepEqual(f.peers.calls, ['manifest 2.0']);
    assert.deepEqual(await counterValues(f.registry, 'peili_served_bytes_total'), [
      `source=peer ${res.rawPayload.length}`,
    ]);
  });
});

describe('blobs', () => {
  const cases: Array<
    [
      name: string,
      method: 'GET' | 'HEAD',
      range: string | undefined,
      status: number,
      extra: Record<string, string>,
      body: string,
    ]
  > = [
    ['GET whole', 'GET', undefined, 200, { 'content-length': '36' }, LAYER.toString()],
    ['HEAD', 'HEAD', undefined, 200, { 'content-length': '36' }, ''],
    [
      'GET bytes=0-9',
      'GET',
      'bytes=0-9',
      206,
      { 'content-length': '10', 'content-range': 'bytes 0-9/36' },
      '0123456789',
    ],
    [
      'GET bytes=30-',
      'GET',
      'bytes=30-',
      206,
      { 'content-length': '6', 'content-range': 'bytes 30-35/36' },
      'uvwxyz',
    ],
    [
      'GET bytes=-4',
      'GET',
      'bytes=-4',
      206,
      { 'content-length': '4', 'content-range': 'bytes 32-35/36' },
      'wxyz',
    ],
    [
      'GET bytes=35-100 (clipped)',
      'GET',
      'bytes=35-100',
      206,
      { 'content-length': '1', 'content-range': 'bytes 35-35/36' },
      'z',
    ],
    ['GET multi-range (ignored)', 'GET', 'bytes=0-1,3-4', 200, { 'content-length': '36' }, LAYER.toString()],
    ['GET malformed range (ignored)', 'GET', 'bytes=oops', 200, { 'content-length': '36' }, LAYER.toString()],
    ['GET reversed range (ignored)', 'GET', 'bytes=9-2', 200, { 'content-length': '36' }, LAYER.toString()],
    ['HEAD with range (ignored)', 'HEAD', 'bytes=0-1', 200, { 'content-length': '36' }, ''],
  ];
  for (const [name, method, range, status, extra, body] of cases) {
    it(`${name} → ${status}`, async () => {
      const f = fixture();
      const res = await f.app.inject({
        method,
        url: `/v2/nginx/blobs/${f.layerDigest}?ns=docker.io`,
        headers: range ? { range } : {},
      });
      assert.equal(res.statusCode, status);
      assert.deepEqual(headersOf(res), {
        'docker-distribution-api-version': API_VERSION,
        'content-type': 'application/octet-stream',
        'docker-content-digest': f.layerDigest,
        'accept-ranges': 'bytes',
        ...extra,
      });
      assert.equal(res.body, body);
      const served = method === 'GET' ? [`source=local ${Buffer.byteLength(body)}`] : [];
      assert.deepEqual(await counterValues(f.registry, 'peili_served_bytes_total'), served);
    });
  }

  for (const range of ['bytes=36-', 'bytes=100-200', 'bytes=-0']) {
    for (const method of ['GET'] as const) {
      it(`${method} ${range} of a 36-byte blob → 416`, async () => {
        const f = fixture();
        const res = await f.app.inject({
          method,
          url: `/v2/nginx/blobs/${f.layerDigest}?ns=docker.io`,
          headers: { range },
        });
        assert.equal(res.statusCode, 416);
        const body = errorBody(
          'RANGE_NOT_SATISFIABLE',
          `range ${JSON.stringify(range)} is not satisfiable for a blob of 36 bytes`,
        );
        assert.deepEqual(headersOf(res), {
          'docker-distribution-api-version': API_VERSION,
          'content-range': 'bytes */36',
          'content-type': JSON_TYPE,
          'content-length': String(body.length),
        });
        assert.equal(res.body, body);
      });
    }
  }

  it('GET a blob only a peer holds → 200 from the peer, counted as peer bytes', async () => {
    const f = fixture();
    const res = await f.app.inject({ method: 'GET', url: `/v2/nginx/blobs/${f.peerDigest}?ns=docker.io` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, 'from a peer');
    assert.equal(res.headers['content-length'], String(f.peerBlob.length));
    assert.deepEqual(await counterValues(f.registry, 'peili_served_bytes_total'), [
      `source=peer ${f.peerBlob.length}`,
    ]);
  });

  it('X-Peili-Mirrored: true serves local content only and counts peer-served bytes', async () => {
    const f = fixture();
    const local = await f.app.inject({
      method: 'GET',
      url: `/v2/nginx/blobs/${f.layerDigest}?ns=docker.io`,
      headers: { 'x-peili-mirrored': 'true' },
    });
    assert.equal(local.statusCode, 200);
    const remote = await f.app.inject({
      method: 'GET',
      url: `/v2/nginx/blobs/${f.peerDigest}?ns=docker.io`,
      headers: { 'x-peili-mirrored': 'true' },
    });
    assert.equal(remote.statusCode, 404);
    assert.equal(remote.body, errorBody('BLOB_UNKNOWN', `blob ${f.peerDigest} is not held by this mirror`));
    assert.deepEqual(f.peers.calls, []);
    assert.deepEqual(await counterValues(f.registry, 'peili_peer_served_bytes_total'), [` ${LAYER.length}`]);
    assert.deepEqual(await counterValues(f.registry, 'peili_mirror_requests_total'), []);
  });
});

describe('errors', () => {
  const HEX = 'a'.repeat(64);
  const SUPPORTED = (algorithm: string): unknown => ({ algorithm, supported: ['sha256', 'sha512'] });
  const cases: Array<[url: string, status: number, code: string, message: string, detail?: unknown]> = [
    [
      '/v2/nginx/manifests/9.9?ns=docker.io',
      404,
      'MANIFEST_UNKNOWN',
      'manifest 9.9 of nginx is not held by this mirror',
    ],
    [
      `/v2/nginx/blobs/sha256:${HEX}?ns=docker.io`,
      404,
      'BLOB_UNKNOWN',
      `blob sha256:${HEX} is not held by this mirror`,
    ],
    ['/v2/nginx/manifests/1.27?ns=quay.io', 404, 'NAME_UNKNOWN', 'registry quay.io is not mirrored here'],
    [
      '/v2/Nginx/manifests/1.27?ns=docker.io',
      400,
      'NAME_INVALID',
      'invalid repository name "Nginx": bad path component "Nginx"',
    ],
    [
      '/v2/a__-b/manifests/1.27',
      400,
      'NAME_INVALID',
      'invalid repository name "a__-b": bad path component "a__-b"',
    ],
    ['/v2/nginx/manifests/-bad?ns=docker.io', 400, 'TAG_INVALID', 'invalid tag "-bad"'],
    [`/v2/nginx/manifests/${'t'.repeat(129)}`, 400, 'TAG_INVALID', `invalid tag "${'t'.repeat(129)}"`],
    [
      '/v2/nginx/blobs/sha256:1234',
      400,
      'DIGEST_INVALID',
      'invalid sha256 digest: want 64 lowercase hex characters',
    ],
    ['/v2/nginx/blobs/latest', 400, 'DIGEST_INVALID', 'invalid digest "latest"'],
    [`/v2/nginx/blobs/SHA256:${HEX}`, 400, 'DIGEST_INVALID', `invalid digest "SHA256:${HEX}"`],
    [
      `/v2/nginx/manifests/md5:${HEX.slice(0, 32)}`,
      400,
      'UNSUPPORTED',
      'unsupported digest algorithm "md5"',
      SUPPORTED('md5'),
    ],
    [
      `/v2/nginx/blobs/sha384:${HEX}`,
      400,
      'UNSUPPORTED',
      'unsupported digest algorithm "sha384"',
      SUPPORTED('sha384'),
    ],
    [
      `/v2/nginx/blobs/sha256:${HEX}?ns=..%2F..%2Fetc`,
      400,
      'NAME_INVALID',
      'invalid registry host "../../etc"',
    ],
    [
      `/v2/nginx/blobs/sha256:${HEX}?ns=docker.io%3A99999`,
      400,
      'NAME_INVALID',
      'invalid registry host "docker.io:99999"',
    ],
    [
      `/v2/nginx/blobs/sha256:${HEX}?ns=a&ns=b`,
      400,
      'NAME_INVALID',
      'the ns parameter is given more than once',
    ],
    [
      `/v2/nginx/blobs/sha256:${HEX}?ns=%3Cscript%3E`,
      400,
      'NAME_INVALID',
      'invalid registry host "<script>"',
    ],
    // Traversal attempts: structure from the raw path only, so none of these is ever routed.
    [`/v2/../../etc/passwd/blobs/sha256:${HEX}`, 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    [
      `/v2/%2e%2e/%2e%2e/etc/passwd/blobs/sha256:${HEX}`,
      404,
      'NAME_UNKNOWN',
      'no registry endpoint at this path',
    ],
    [
      `/v2/library/..%2f..%2fetc/blobs/sha256:${HEX}`,
      404,
      'NAME_UNKNOWN',
      'no registry endpoint at this path',
    ],
    [`/v2/a%2fb/blobs/sha256:${HEX}`, 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    [`/v2/a//b/blobs/sha256:${HEX}`, 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    [`/v2/a/blobs/sha256:${HEX}%2f..`, 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    [`/v2/a/blobs/%E0%A4%A`, 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    [`/v2/a%5c..%5cb/blobs/sha256:${HEX}`, 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    // Encoded dots that are not a whole segment decode into a name the grammar rejects.
    [
      `/v2/a%2e%2eb/blobs/sha256:${HEX}`,
      400,
      'NAME_INVALID',
      'invalid repository name "a..b": bad path component "a..b"',
    ],
    // Endpoints the mirror does not serve.
    ['/v2', 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    ['/v2/_catalog', 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    ['/v2/nginx/tags/list', 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    ['/v2/nginx/manifests/', 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    ['/v2/nginx/blobs/uploads/', 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    ['/v2/manifests/1.27', 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
    ['/etc/passwd', 404, 'NAME_UNKNOWN', 'no registry endpoint at this path'],
  ];
  for (const [url, status, code, message, detail] of cases) {
    for (const method of ['GET', 'HEAD'] as const) {
      it(`${method} ${url.slice(0, 90)} → ${status} ${code}`, async () => {
        const f = fixture({ mirrored: ['docker.io'] });
        const res = await f.app.inject({ method, url });
        assert.equal(res.statusCode, status);
        const body = errorBody(code, message, detail);
        const expected: Record<string, unknown> = { 'docker-distribution-api-version': API_VERSION };
        if (method === 'GET')
          Object.assign(expected, { 'content-type': JSON_TYPE, 'content-length': String(body.length) });
        assert.deepEqual(headersOf(res), expected);
        assert.equal(res.body, method === 'GET' ? body : '');
        // Only well-formed requests for content that is absent reach the store.
        const wellFormedMiss = code === 'MANIFEST_UNKNOWN' || code === 'BLOB_UNKNOWN';
        assert.equal(f.storeCalls.length > 0, wellFormedMiss, f.storeCalls.join('; '));
      });
    }
  }

  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
    it(`${method} → 405 UNSUPPORTED with Allow`, async () => {
      const f = fixture();
      const res = await f.app.inject({
        method,
        url: '/v2/nginx/blobs/uploads/',
        headers: { 'content-type': 'application/octet-stream' },
        payload: method === 'POST' || method === 'PUT' ? 'x'.repeat(10) : undefined,
      });
      assert.equal(res.statusCode, 405);
      const body = errorBody('UNSUPPORTED', `method ${method} is not supported by this mirror`);
      assert.deepEqual(headersOf(res), {
        'docker-distribution-api-version': API_VERSION,
        allow: 'GET, HEAD',
        'content-type': JSON_TYPE,
        'content-length': String(body.length),
      });
      assert.equal(res.body, body);
      assert.deepEqual(f.storeCalls, []);
    });
  }

  it('a failing store → 503 UNAVAILABLE, logged once at error level', async () => {
    const f = fixture({
      overrides: { info: async () => Promise.reject(new Error('containerd socket gone')) },
    });
    const res = await f.app.inject({ method: 'GET', url: `/v2/nginx/blobs/${f.layerDigest}?ns=docker.io` });
    assert.equal(res.statusCode, 503);
    assert.equal(res.body, errorBody('UNAVAILABLE', 'the local content store is unavailable'));
    const errors = f.logs.filter((l) => (l['level'] as number) >= 50);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.['msg'], 'the local content store is unavailable');
    assert.equal((errors[0]?.['err'] as { message: string }).message, 'containerd socket gone');
  });

  it('a store stream failing before its first byte → 500 without the blob headers', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk read failed'));
      },
    });
    const f = fixture({ overrides: { read: async () => failing } });
    const res = await f.app.inject({ method: 'GET', url: `/v2/nginx/blobs/${f.layerDigest}?ns=docker.io` });
    assert.equal(res.statusCode, 500);
    const body = errorBody('UNAVAILABLE', 'internal server error');
    assert.deepEqual(headersOf(res), {
      'docker-distribution-api-version': API_VERSION,
      'content-type': JSON_TYPE,
      'content-length': String(body.length),
    });
    assert.equal(res.body, body);
    const errors = f.logs.filter((l) => l['level'] === 50);
    assert.deepEqual(
      errors.map((l) => (l['err'] as { message: string }).message),
      ['disk read failed'],
    );
  });

  it('an unexpected exception → 500 with a generic body', async () => {
    const service: RegistryService = {
      manifest: async () => {
        throw new TypeError('boom');
      },
      blob: async () => {
        throw new TypeError('boom');
      },
    };
    const f = fixture({ service });
    const res = await f.app.inject({ method: 'GET', url: '/v2/nginx/manifests/1.27' });
    assert.equal(res.statusCode, 500);
    assert.equal(res.body, errorBody('UNAVAILABLE', 'internal server error'));
    assert.equal(f.logs.filter((l) => l['level'] === 50).length, 1);
  });

  const levels: Array<[url: string, level: number]> = [
    ['/v2/nginx/manifests/9.9?ns=docker.io', 20],
    ['/v2/nginx/blobs/latest', 40],
  ];
  for (const [url, level] of levels) {
    it(`logs ${url} once at level ${level}`, async () => {
      const f = fixture();
      await f.app.inject({ method: 'GET', url });
      const errorLines = f.logs.filter((l) => typeof l['code'] === 'string' && l['msg'] !== 'request served');
      assert.deepEqual(
        errorLines.map((l) => l['level']),
        [level],
      );
    });
  }
});

describe('HTTP metrics', () => {
  it('labels requests by route pattern, never the raw URL, and ends with nothing in flight', async () => {
    const f = fixture();
    await f.app.inject({ method: 'GET', url: '/v2/' });
    await f.app.inject({ method: 'HEAD', url: '/v2/nginx/manifests/1.27?ns=docker.io' });
    await f.app.inject({ method: 'GET', url: `/v2/nginx/blobs/${f.layerDigest}?ns=docker.io` });
    await f.app.inject({ method: 'GET', url: '/v2/nginx/blobs/nope' });
    await f.app.inject({ method: 'GET', url: '/random/path' });
    await f.app.inject({ method: 'DELETE', url: '/v2/nginx/manifests/1.27' });
    assert.deepEqual(await counterValues(f.registry, 'peili_http_requests_total'), [
      'handler=/v2/,method=GET,code=200 1',
      'handler=/v2/:name/blobs/:digest,method=GET,code=200 1',
      'handler=/v2/:name/blobs/:digest,method=GET,code=400 1',
      'handler=/v2/:name/manifests/:ref,method=DELETE,code=405 1',
      'handler=/v2/:name/manifests/:ref,method=HEAD,code=200 1',
      'handler=unknown,method=GET,code=404 1',
    ]);
    assert.deepEqual(await counterValues(f.registry, 'peili_http_requests_inflight'), [
      'handler=/v2/ 0',
      'handler=/v2/:name/blobs/:digest 0',
      'handler=/v2/:name/manifests/:ref 0',
      'handler=unknown 0',
    ]);
    const text = await f.registry.metrics();
    assert.equal(text.includes('nginx'), false);
    assert.equal(text.includes('random'), false);
    assert.match(
      text,
      /peili_http_request_duration_seconds_count\{handler="\/v2\/",method="GET",code="200"\} 1/,
    );
    assert.deepEqual(await counterValues(f.registry, 'peili_mirror_requests_total'), [
      'registry=docker.io,kind=blob,outcome=hit,source=local 1',
      'registry=docker.io,kind=manifest,outcome=hit,source=local 1',
    ]);
  });
});

describe('real server', () => {
  async function listen(f: Fixture): Promise<number> {
    await f.app.listen({ host: HOST, port: 0 });
    const address = f.app.server.address();
    assert.ok(address !== null && typeof address === 'object');
    return address.port;
  }

  /** Sends raw bytes and returns the whole response text (the server closes or the timeout fires). */
  async function raw(port: number, request: string): Promise<string> {
    const socket = connect({ host: HOST, port });
    socket.setTimeout(5_000, () => socket.destroy(new Error('raw request timed out')));
    socket.end(request);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'close');
    return Buffer.concat(chunks).toString('latin1');
  }

  it('answers 431 to a request head larger than maxHeaderSize', async () => {
    const f = fixture({ app: { maxHeaderSize: 4096 } });
    const port = await listen(f);
    const small = await fetch(`http://${HOST}:${port}/v2/`, { headers: { 'x-pad': 'a'.repeat(3000) } });
    assert.equal(small.status, 200);
    await small.arrayBuffer();
    const big = await raw(
      port,
      `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(8192)}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(big, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  });

  it('the default limit is 16 KiB', async () => {
    const f = fixture();
    const port = await listen(f);
    const ok = await raw(
      port,
      `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(15000)}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(ok, /^HTTP\/1\.1 200 OK\r\n/);
    const big = await raw(
      port,
      `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(17000)}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(big, /^HTTP\/1\.1 431 /);
  });

  it('an unnormalised traversal path on the wire never reaches the store', async () => {
    const f = fixture();
    const port = await listen(f);
    for (const path of [
      `/v2/../../etc/passwd/blobs/sha256:${'a'.repeat(64)}`,
      `/v2/%2e%2e/%2e%2e/etc/passwd/blobs/sha256:${'a'.repeat(64)}`,
      `/v2/nginx/blobs/..%2f..%2fetc%2fpasswd`,
    ]) {
      const response = await raw(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(response, /^HTTP\/1\.1 404 Not Found\r\n/, path);
      assert.ok(response.endsWith(errorBody('NAME_UNKNOWN', 'no registry endpoint at this path')), path);
    }
    assert.deepEqual(f.storeCalls, []);
  });

  it('aborts the store stream when the client disconnects mid-download', async () => {
    let produced = 0;
    let destroyed!: () => void;
    let aborted!: () => void;
    const storeDestroyed = new Promise<void>((resolve) => (destroyed = resolve));
    const storeAborted = new Promise<void>((resolve) => (aborted = resolve));
    const endless = (signal?: AbortSignal): Readable => {
      signal?.addEventListener('abort', () => aborted(), { once: true });
      return new Readable({
        read() {
          produced += 65536;
          this.push(Buffer.alloc(65536, 1));
        },
        destroy(error, callback) {
          destroyed();
          callback(error);
        },
      });
    };
    const size = 1024 * 1024 * 1024;
    const f = fixture({
      overrides: {
        info: async (digest) => ({ digest, size, labels: {} }),
        read: async (_digest, _range, signal) => endless(signal),
      },
    });
    const port = await listen(f);
    const controller = new AbortController();
    const response = await fetch(`http://${HOST}:${port}/v2/nginx/blobs/${f.layerDigest}?ns=docker.io`, {
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), String(size));
    const reader = response.body!.getReader();
    let received = 0;
    while (received < 1024 * 1024) received += (await reader.read()).value?.length ?? 0;
    controller.abort();
    // Both happen when the server sees the connection close (the test times out otherwise).
    await Promise.all([storeDestroyed, storeAborted]);
    // Backpressure: the server read only a bounded amount past what the client took.
    assert.ok(produced < 64 * 1024 * 1024, `produced ${produced} bytes`);
    // The in-flight gauge drops in the same 'close' handler that aborted the store's signal.
    assert.deepEqual(await counterValues(f.registry, 'peili_http_requests_inflight'), [
      'handler=/v2/:name/blobs/:digest 0',
    ]);
  });
});
