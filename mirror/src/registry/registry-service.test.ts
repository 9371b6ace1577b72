import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createMetrics } from '../metrics/metrics.js';
import { digestOf } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { MemoryStore } from '../../test-support/memory-store.js';
import type { ContentStore, Digest } from '../store/content-store.js';
import type { PeerBlob, PeerManifest, PeerSource } from './peer-source.js';
import {
  createRegistryService,
  type BlobRequest,
  type ManifestRequest,
  type RegistryServiceDeps,
  type RegistryServiceOptions,
  type ServeResult,
} from './registry-service.js';
import type { TagPolicy, TagRequest } from './tag-policy.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const signal = new AbortController().signal;

/** A PeerSource fake holding manifests (by reference) and blobs (by digest); records every call. */
class FakePeers implements PeerSource {
  readonly calls: string[] = [];
  readonly manifests = new Map<string, PeerManifest>();
  readonly blobs = new Map<Digest, Buffer>();
  failure: Error | undefined;

  async manifest(request: {
    registry: string;
    repository: string;
    reference: string;
  }): Promise<PeerManifest | undefined> {
    this.calls.push(`manifest ${request.registry}|${request.repository}|${request.reference}`);
    if (this.failure) throw this.failure;
    return this.manifests.get(request.reference);
  }

  async blobSize(request: {
    registry: string;
    repository: string;
    digest: Digest;
  }): Promise<number | undefined> {
    this.calls.push(`blobSize ${request.registry}|${request.repository}|${request.digest}`);
    if (this.failure) throw this.failure;
    return this.blobs.get(request.digest)?.length;
  }

  async blob(request: {
    registry: string;
    repository: string;
    digest: Digest;
    range?: { start: number; end?: number };
  }): Promise<PeerBlob | undefined> {
    const range = request.range ? ` ${request.range.start}-${request.range.end ?? ''}` : '';
    this.calls.push(`blob ${request.registry}|${request.repository}|${request.digest}${range}`);
    if (this.failure) throw this.failure;
    const bytes = this.blobs.get(request.digest);
    if (!bytes) return undefined;
    const start = request.range?.start ?? 0;
    const end = Math.min(request.range?.end ?? bytes.length - 1, bytes.length - 1);
    return {
      size: bytes.length,
      range: { start, end },
      stream: Readable.from([bytes.subarray(start, end + 1)]),
      peerId: 'p1',
    };
  }
}

/** A TagPolicy fake with a fixed answer; records every question. */
class FakeTagPolicy implements TagPolicy {
  readonly calls: TagRequest[] = [];
  constructor(readonly allow: boolean) {}
  async allowTagResolution(request: TagRequest): Promise<boolean> {
    this.calls.push({ ...request });
    return this.allow;
  }
}

/** Counts the store calls a test makes, to prove what was (not) consulted. */
function spyStore(store: ContentStore, calls: string[], overrides: Partial<ContentStore> = {}): ContentStore {
  return {
    listImages: (s) => (calls.push('listImages'), (overrides.listImages ?? store.listImages.bind(store))(s)),
    getImage: (name, s) => (
      calls.push(`getImage ${name}`),
      (overrides.getImage ?? store.getImage.bind(store))(name, s)
    ),
    info: (digest, s) => (
      calls.push(`info ${digest}`),
      (overrides.info ?? store.info.bind(store))(digest, s)
    ),
    listContent: (s) => store.listContent(s),
    read: (digest, range, s) => (
      calls.push(`read ${digest}`),
      (overrides.read ?? store.read.bind(store))(digest, range, s)
    ),
    subscribe: (s) => store.subscribe(s),
  };
}

async function bodyOf(result: ServeResult): Promise<Buffer | undefined> {
  if (result.body === undefined || Buffer.isBuffer(result.body)) return result.body;
  const chunks: Buffer[] = [];
  for await (const chunk of result.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

interface World {
  store: MemoryStore;
  storeCalls: string[];
  peers: FakePeers;
  nginx: ReturnType<MemoryStore['addOciImage']>;
  layer: Buffer;
  layerDigest: Digest;
  registry: Registry;
  deps: RegistryServiceDeps;
}

function world(extra: Partial<RegistryServiceDeps> = {}, overrides: Partial<ContentStore> = {}): World {
  const store = new MemoryStore();
  const layer = Buffer.from('0123456789abcdefghij');
  const nginx = store.addOciImage('docker.io/library/nginx:1.27', { layers: [layer] });
  const storeCalls: string[] = [];
  const peers = new FakePeers();
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  return {
    store,
    storeCalls,
    peers,
    nginx,
    layer,
    layerDigest: digestOf(layer),
    registry,
    deps: { store: spyStore(store, storeCalls, overrides), peers, metrics, ...extra },
  };
}

async function mirrorCounts(registry: Registry): Promise<string[]> {
  const metric = await registry.getSingleMetric('peili_mirror_requests_total')?.get();
  return (metric?.values ?? [])
    .map(
      (v) =>
        `${v.labels['registry']}|${v.labels['kind']}|${v.labels['outcome']}|${v.labels['source']}=${v.value}`,
    )
    .sort();
}

function manifestRequest(overrides: Partial<ManifestRequest>): ManifestRequest {
  return {
    registry: 'docker.io',
    repository: 'nginx',
    reference: '1.27',
    method: 'GET',
    fromPeer: false,
    ...overrides,
  };
}

function blobRequest(overrides: Partial<BlobRequest>): BlobRequest {
  return {
    registry: 'docker.io',
    repository: 'nginx',
    digest: '',
    method: 'GET',
    fromPeer: false,
    ...overrides,
  };
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  status: number,
  message: string,
): Promise<OciError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof OciError, `expected an OciError, got ${String(caught)}`);
  assert.deepEqual([caught.code, caught.status, caught.message], [code, status, message]);
  return caught;
}

describe('registry service: manifests', () => {
  it('resolves a Docker Hub tag from the local store (library/ added) and serves the manifest', async () => {
    const w = world();
    const service = createRegistryService(w.deps);
    const result = await service.manifest(manifestRequest({}), signal);
    assert.equal(result.status, 200);
    assert.equal(result.source, 'local');
    assert.deepEqual(result.headers, {
      contentType: OCI_MANIFEST,
      contentLength: w.nginx.manifestBytes.length,
      digest: w.nginx.manifest.digest,
    });
    assert.deepEqual(await bodyOf(result), w.nginx.manifestBytes);
    assert.deepEqual(w.storeCalls, [
      'getImage docker.io/library/nginx:1.27',
      `info ${w.nginx.manifest.digest}`,
      `read ${w.nginx.manifest.digest}`,
    ]);
    assert.deepEqual(w.peers.calls, []);
    assert.deepEqual(await mirrorCounts(w.registry), ['docker.io|manifest|hit|local=1']);
  });

  it('answers HEAD with the same headers and no body', async () => {
    const w = world();
    const result = await createRegistryService(w.deps).manifest(manifestRequest({ method: 'HEAD' }), signal);
    assert.equal(result.body, undefined);
    assert.deepEqual(result.headers, {
      contentType: OCI_MANIFEST,
      contentLength: w.nginx.manifestBytes.length,
      digest: w.nginx.manifest.digest,
    });
  });

  const aliases: Array<[registry: string, repository: string]> = [
    ['index.docker.io', 'nginx'],
    ['registry-1.docker.io', 'library/nginx'],
    ['docker.io', 'library/nginx'],
  ];
  for (const [registry, repository] of aliases) {
    it(`resolves ${registry} + ${repository} to the docker.io record`, async () => {
      const w = world();
      const result = await createRegistryService(w.deps, { mirroredRegistries: ['docker.io'] }).manifest(
        manifestRequest({ registry, repository }),
        signal,
      );
      assert.equal(result.headers.digest, w.nginx.manifest.digest);
    });
  }

  it('serves a manifest by digest with the media type its bytes declare', async () => {
    const w = world();
    const docker = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: {}, layers: [] }),
    );
    const info = w.store.addBlob(docker);
    const result = await createRegistryService(w.deps).manifest(
      manifestRequest({ reference: info.digest }),
      signal,
    );
    assert.deepEqual(result.headers, {
      contentType: DOCKER_MANIFEST,
      contentLength: docker.length,
      digest: info.digest,
    });
    assert.deepEqual(await bodyOf(result), docker);
  });

  it('detects an index without mediaType by its shape', async () => {
    const w = world();
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [w.nginx.manifest] }));
    const info = w.store.addBlob(index);
    const result = await createRegistryService(w.deps).manifest(
      manifestRequest({ reference: info.digest }),
      signal,
    );
    assert.equal(result.headers.contentType, OCI_INDEX);
  });

  it('serves a tag whose image record points at an index', async () => {
    const w = world();
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [w.nginx.manifest] }),
    );
    const info = w.store.addBlob(index);
    w.store.setImage('ghcr.io/org/multi:v1', { mediaType: OCI_INDEX, digest: info.digest, size: info.size });
    const result = await createRegistryService(w.deps).manifest(
      manifestRequest({ registry: 'ghcr.io', repository: 'org/multi', reference: 'v1' }),
      signal,
    );
    assert.deepEqual(result.headers, {
      contentType: OCI_INDEX,
      contentLength: index.length,
      digest: info.digest,
    });
  });

  it('does not serve a non-manifest blob (a layer) as a manifest', async () => {
    const w = world();
    await rejectsWith(
      createRegistryService(w.deps).manifest(manifestRequest({ reference: w.layerDigest }), signal),
      'MANIFEST_UNKNOWN',
      404,
      `manifest ${w.layerDigest} of nginx is not held by this mirror`,
    );
  });

  it('does not read a manifest larger than maxManifestBytes', async () => {
    const w = world();
    const options: RegistryServiceOptions = { maxManifestBytes: w.nginx.manifestBytes.length - 1 };
    await rejectsWith(
      createRegistryService(w.deps, options).manifest(
        manifestRequest({ reference: w.nginx.manifest.digest }),
        signal,
      ),
      'MANIFEST_UNKNOWN',
      404,
      `manifest ${w.nginx.manifest.digest} of nginx is not held by this mirror`,
    );
    assert.deepEqual(w.storeCalls, [`info ${w.nginx.manifest.digest}`]);
  });

  it('treats a local manifest whose bytes do not hash to its digest as a miss and asks peers', async () => {
    const tampered = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [1] }),
    );
    const w = world({}, { read: async () => Readable.from([tampered]) });
    const good = w.nginx.manifestBytes;
    w.peers.manifests.set(w.nginx.manifest.digest, {
      mediaType: OCI_MANIFEST,
      digest: w.nginx.manifest.digest,
      body: good,
      peerId: 'p1',
    });
    const result = await createRegistryService(w.deps).manifest(
      manifestRequest({ reference: w.nginx.manifest.digest }),
      signal,
    );
    assert.equal(result.source, 'peer');
    assert.deepEqual(await bodyOf(result), good);
    assert.deepEqual(w.peers.calls, [`manifest docker.io|nginx|${w.nginx.manifest.digest}`]);
  });

  it('asks peers on a local tag miss and serves what they return', async () => {
    const w = world();
    const body = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }),
    );
    const digest = digestOf(body);
    w.peers.manifests.set('2.0', { mediaType: OCI_MANIFEST, digest, body, peerId: 'p1' });
    const result = await createRegistryService(w.deps).manifest(
      manifestRequest({ reference: '2.0' }),
      signal,
    );
    assert.deepEqual(result, {
      status: 200,
      headers: { contentType: OCI_MANIFEST, contentLength: body.length, digest },
      body,
      source: 'peer',
    });
    assert.deepEqual(w.peers.calls, ['manifest docker.io|nginx|2.0']);
    assert.deepEqual(await mirrorCounts(w.registry), ['docker.io|manifest|hit|peer=1']);
  });

  const misses: Array<
    [name: string, request: Partial<ManifestRequest>, peerCalls: string[], counts: string[]]
  > = [
    [
      'a tag nobody holds',
      { reference: '9.9' },
      ['manifest docker.io|nginx|9.9'],
      ['docker.io|manifest|miss|none=1'],
    ],
    ['a tag from a peer (loop guard: local only)', { reference: '9.9', fromPeer: true }, [], []],
    [
      'a digest nobody holds',
      { reference: `sha256:${'b'.repeat(64)}` },
      [`manifest docker.io|nginx|sha256:${'b'.repeat(64)}`],
      ['docker.io|manifest|miss|none=1'],
    ],
    ['a digest from a peer', { reference: `sha256:${'b'.repeat(64)}`, fromPeer: true }, [], []],
  ];
  for (const [name, request, peerCalls, counts] of misses) {
    it(`404s ${name}`, async () => {
      const w = world();
      const reference = request.reference ?? '';
      await rejectsWith(
        createRegistryService(w.deps).manifest(manifestRequest(request), signal),
        'MANIFEST_UNKNOWN',
        404,
        `manifest ${reference} of nginx is not held by this mirror`,
      );
      assert.deepEqual(w.peers.calls, peerCalls);
      assert.deepEqual(await mirrorCounts(w.registry), counts);
    });
  }

  it('serves a locally held tag to a peer', async () => {
    const w = world();
    const result = await createRegistryService(w.deps).manifest(manifestRequest({ fromPeer: true }), signal);
    assert.equal(result.source, 'local');
    assert.deepEqual(await mirrorCounts(w.registry), []);
  });

  it('404s fast when the tag policy denies, before touching the store or peers', async () => {
    const policy = new FakeTagPolicy(false);
    const w = world({ tagPolicy: policy });
    await rejectsWith(
      createRegistryService(w.deps).manifest(manifestRequest({}), signal),
      'MANIFEST_UNKNOWN',
      404,
      'tag 1.27 of nginx is resolved upstream, not by this mirror',
    );
    assert.deepEqual(policy.calls, [{ registry: 'docker.io', repository: 'nginx', tag: '1.27' }]);
    assert.deepEqual(w.storeCalls, []);
    assert.deepEqual(w.peers.calls, []);
    assert.deepEqual(await mirrorCounts(w.registry), ['docker.io|manifest|miss|none=1']);
  });

  it('serves the tag when the policy allows it', async () => {
    const policy = new FakeTagPolicy(true);
    const w = world({ tagPolicy: policy });
    const result = await createRegistryService(w.deps).manifest(manifestRequest({}), signal);
    assert.equal(result.headers.digest, w.nginx.manifest.digest);
    assert.equal(policy.calls.length, 1);
  });

  it('does not ask the tag policy for peers or for digests', async () => {
    const policy = new FakeTagPolicy(false);
    const w = world({ tagPolicy: policy });
    const service = createRegistryService(w.deps);
    assert.equal((await service.manifest(manifestRequest({ fromPeer: true }), signal)).source, 'local');
    assert.equal(
      (await service.manifest(manifestRequest({ reference: w.nginx.manifest.digest }), signal)).source,
      'local',
    );
    assert.deepEqual(policy.calls, []);
  });

  describe('without ns', () => {
    it('resolves a tag held under exactly one registry, asking the policy with that registry', async () => {
      const policy = new FakeTagPolicy(true);
      const w = world({ tagPolicy: policy });
      const result = await createRegistryService(w.deps).manifest(
        manifestRequest({ registry: undefined }),
        signal,
      );
      assert.equal(result.headers.digest, w.nginx.manifest.digest);
      assert.deepEqual(policy.calls, [{ registry: 'docker.io', repository: 'nginx', tag: '1.27' }]);
      assert.deepEqual(await mirrorCounts(w.registry), ['unknown|manifest|hit|local=1']);
    });

    it('404s a tag held under two registries, and never asks peers for it', async () => {
      const w = world();
      w.store.addOciImage('ghcr.io/nginx:1.27', { layers: ['other'] });
      await rejectsWith(
        createRegistryService(w.deps).manifest(manifestRequest({ registry: undefined }), signal),
        'MANIFEST_UNKNOWN',
        404,
        'manifest 1.27 of nginx is not held by this mirror',
      );
      assert.deepEqual(w.peers.calls, []);
    });

    it('ignores CRI bare ids and digest records when matching', async () => {
      const w = world();
      w.store.setImage(`sha256:${'c'.repeat(64)}`, w.nginx.manifest);
      w.store.setImage(`docker.io/library/nginx@${w.nginx.manifest.digest}`, w.nginx.manifest);
      const result = await createRegistryService(w.deps).manifest(
        manifestRequest({ registry: undefined }),
        signal,
      );
      assert.equal(result.source, 'local');
    });

    it('serves digests and asks peers with an empty registry', async () => {
      const w = world();
      const digest: Digest = `sha256:${'d'.repeat(64)}`;
      await rejectsWith(
        createRegistryService(w.deps).blob(blobRequest({ registry: undefined, digest }), signal),
        'BLOB_UNKNOWN',
        404,
        `blob ${digest} is not held by this mirror`,
      );
      assert.deepEqual(w.peers.calls, [`blob |nginx|${digest}`]);
      assert.deepEqual(await mirrorCounts(w.registry), ['unknown|blob|miss|none=1']);
    });
  });

  it('turns a peer failure into a miss', async () => {
    const w = world();
    w.peers.failure = new Error('peer exploded');
    await rejectsWith(
      createRegistryService(w.deps).manifest(manifestRequest({ reference: '9.9' }), signal),
      'MANIFEST_UNKNOWN',
      404,
      'manifest 9.9 of nginx is not held by this mirror',
    );
  });

  it('rethrows the abort when the caller aborted', async () => {
    const w = world();
    const controller = new AbortController();
    controller.abort(new Error('client gone'));
    w.peers.failure = new Error('aborted too');
    await assert.rejects(
      createRegistryService(w.deps).manifest(manifestRequest({ reference: '9.9' }), controller.signal),
      (error: unknown) => error instanceof Error && error.message === 'client gone',
    );
  });

  it('answers 503 UNAVAILABLE when the store fails', async () => {
    const w = world({}, { getImage: async () => Promise.reject(new Error('connection refused')) });
    const error = await rejectsWith(
      createRegistryService(w.deps).manifest(manifestRequest({}), signal),
      'UNAVAILABLE',
      503,
      'the local content store is unavailable',
    );
    assert.equal((error.cause as Error).message, 'connection refused');
  });
});

describe('registry service: request validation and scope', () => {
  const cases: Array<
    [
      name: string,
      request: Partial<ManifestRequest>,
      options: RegistryServiceOptions,
      code: string,
      status: number,
      message: string,
    ]
  > = [
    [
      'unmirrored registry',
      { registry: 'quay.io' },
      { mirroredRegistries: ['docker.io', 'ghcr.io'] },
      'NAME_UNKNOWN',
      404,
      'registry quay.io is not mirrored here',
    ],
    ['garbage ns', { registry: '../etc' }, {}, 'NAME_INVALID', 400, 'invalid registry host "../etc"'],
    [
      'ns with a path',
      { registry: 'docker.io/evil' },
      {},
      'NAME_INVALID',
      400,
      'invalid registry host "docker.io/evil"',
    ],
    ['empty ns', { registry: '' }, {}, 'NAME_INVALID', 400, 'invalid registry host ""'],
    [
      'traversal repository',
      { repository: '../../etc/passwd' },
      {},
      'NAME_INVALID',
      400,
      'invalid repository name "../../etc/passwd": bad path component ".."',
    ],
    [
      'uppercase repository',
      { repository: 'Nginx' },
      {},
      'NAME_INVALID',
      400,
      'invalid repository name "Nginx": bad path component "Nginx"',
    ],
    ['bad tag', { reference: '-x' }, {}, 'TAG_INVALID', 400, 'invalid tag "-x"'],
    [
      'bad digest',
      { reference: 'sha256:abc' },
      {},
      'DIGEST_INVALID',
      400,
      'invalid sha256 digest: want 64 lowercase hex characters',
    ],
    [
      'unknown algorithm',
      { reference: `md5:${'a'.repeat(32)}` },
      {},
      'UNSUPPORTED',
      400,
      'unsupported digest algorithm "md5"',
    ],
  ];
  for (const [name, request, options, code, status, message] of cases) {
    it(`manifest: rejects ${name} (${code}) without touching the store or peers`, async () => {
      const w = world();
      await rejectsWith(
        createRegistryService(w.deps, options).manifest(manifestRequest(request), signal),
        code,
        status,
        message,
      );
      assert.deepEqual(w.storeCalls, []);
      assert.deepEqual(w.peers.calls, []);
      assert.deepEqual(await mirrorCounts(w.registry), []);
    });
  }

  const blobCases: Array<
    [name: string, request: Partial<BlobRequest>, code: string, status: number, message: string]
  > = [
    [
      'unmirrored registry',
      { registry: 'quay.io', digest: `sha256:${'a'.repeat(64)}` },
      'NAME_UNKNOWN',
      404,
      'registry quay.io is not mirrored here',
    ],
    [
      'garbage ns',
      { registry: 'a b', digest: `sha256:${'a'.repeat(64)}` },
      'NAME_INVALID',
      400,
      'invalid registry host "a b"',
    ],
    [
      'traversal repository',
      { repository: 'a/../b', digest: `sha256:${'a'.repeat(64)}` },
      'NAME_INVALID',
      400,
      'invalid repository name "a/../b": bad path component ".."',
    ],
    ['a tag as digest', { digest: 'latest' }, 'DIGEST_INVALID', 400, 'invalid digest "latest"'],
    [
      'traversal digest',
      { digest: 'sha256:../../x' },
      'DIGEST_INVALID',
      400,
      'invalid digest "sha256:../../x"',
    ],
    [
      'uppercase hex',
      { digest: `sha256:${'A'.repeat(64)}` },
      'DIGEST_INVALID',
      400,
      'invalid sha256 digest: want 64 lowercase hex characters',
    ],
    [
      'unknown algorithm',
      { digest: `blake3:${'a'.repeat(64)}` },
      'UNSUPPORTED',
      400,
      'unsupported digest algorithm "blake3"',
    ],
  ];
  for (const [name, request, code, status, message] of blobCases) {
    it(`blob: rejects ${name} (${code}) without touching the store or peers`, async () => {
      const w = world();
      const options = { mirroredRegistries: ['docker.io'] };
      await rejectsWith(
        createRegistryService(w.deps, options).blob(blobRequest(request), signal),
        code,
        status,
        message,
      );
      assert.deepEqual(w.storeCalls, []);
      assert.deepEqual(w.peers.calls, []);
      assert.deepEqual(await mirrorCounts(w.registry), []);
    });
  }

  const mirroredCases: Array<[mirrored: string[], ns: string]> = [
    [['docker.io'], 'index.docker.io'],
    [['registry-1.docker.io'], 'docker.io'],
    [['Docker.IO'], 'docker.io'],
    [[], 'docker.io'],
  ];
  for (const [mirrored, ns] of mirroredCases) {
    it(`mirroredRegistries ${JSON.stringify(mirrored)} serves ns=${ns}`, async () => {
      const w = world();
      const result = await createRegistryService(w.deps, { mirroredRegistries: mirrored }).manifest(
        manifestRequest({ registry: ns }),
        signal,
      );
      assert.equal(result.status, 200);
    });
  }
});

describe('registry service: blobs', () => {
  const local: Array<
    [
      name: string,
      request: Partial<BlobRequest>,
      status: 200 | 206,
      contentLength: number,
      contentRange: string | undefined,
      body: string | undefined,
    ]
  > = [
    ['GET the whole blob', {}, 200, 20, undefined, '0123456789abcdefghij'],
    ['HEAD the blob', { method: 'HEAD' }, 200, 20, undefined, undefined],
    ['GET bytes=0-9', { range: 'bytes=0-9' }, 206, 10, 'bytes 0-9/20', '0123456789'],
    ['GET bytes=15-', { range: 'bytes=15-' }, 206, 5, 'bytes 15-19/20', 'fghij'],
    ['GET bytes=-3', { range: 'bytes=-3' }, 206, 3, 'bytes 17-19/20', 'hij'],
    ['GET bytes=10-999 (clipped)', { range: 'bytes=10-999' }, 206, 10, 'bytes 10-19/20', 'abcdefghij'],
    [
      'GET with a multi-range (ignored)',
      { range: 'bytes=0-1,4-5' },
      200,
      20,
      undefined,
      '0123456789abcdefghij',
    ],
    [
      'GET with a malformed range (ignored)',
      { range: 'bytes=x-y' },
      200,
      20,
      undefined,
      '0123456789abcdefghij',
    ],
    ['HEAD with a range (ignored)', { method: 'HEAD', range: 'bytes=0-1' }, 200, 20, undefined, undefined],
  ];
  for (const [name, request, status, contentLength, contentRange, body] of local) {
    it(`${name} → ${status}`, async () => {
      const w = world();
      const result = await createRegistryService(w.deps).blob(
        blobRequest({ digest: w.layerDigest, ...request }),
        signal,
      );
      assert.equal(result.status, status);
      assert.equal(result.source, 'local');
      assert.deepEqual(result.headers, {
        contentType: 'application/octet-stream',
        contentLength,
        digest: w.layerDigest,
        acceptRanges: 'bytes',
        ...(contentRange ? { contentRange } : {}),
      });
      assert.equal((await bodyOf(result))?.toString(), body);
      assert.deepEqual(w.peers.calls, []);
      assert.deepEqual(await mirrorCounts(w.registry), ['docker.io|blob|hit|local=1']);
    });
  }

  const unsatisfiable = ['bytes=20-', 'bytes=25-30', 'bytes=-0'];
  for (const range of unsatisfiable) {
    it(`GET ${range} of a 20-byte blob → 416 with Content-Range bytes */20`, async () => {
      const w = world();
      const error = await rejectsWith(
        createRegistryService(w.deps).blob(blobRequest({ digest: w.layerDigest, range }), signal),
        'RANGE_NOT_SATISFIABLE',
        416,
        `range ${JSON.stringify(range)} is not satisfiable for a blob of 20 bytes`,
      );
      assert.deepEqual(error.headers, { 'content-range': 'bytes */20' });
      assert.equal(w.storeCalls.filter((c) => c.startsWith('read')).length, 0);
    });
  }

  const peer: Array<
    [
      name: string,
      request: Partial<BlobRequest>,
      status: 200 | 206,
      length: number,
      contentRange: string | undefined,
      body: string | undefined,
      calls: string[],
    ]
  > = [
    ['GET', {}, 200, 6, undefined, 'peer!!', ['blob docker.io|nginx|D']],
    ['HEAD', { method: 'HEAD' }, 200, 6, undefined, undefined, ['blobSize docker.io|nginx|D']],
    [
      'GET bytes=1-2',
      { range: 'bytes=1-2' },
      206,
      2,
      'bytes 1-2/6',
      'ee',
      ['blobSize docker.io|nginx|D', 'blob docker.io|nginx|D 1-2'],
    ],
    [
      'GET bytes=-2',
      { range: 'bytes=-2' },
      206,
      2,
      'bytes 4-5/6',
      '!!',
      ['blobSize docker.io|nginx|D', 'blob docker.io|nginx|D 4-5'],
    ],
    [
      'GET with a malformed range',
      { range: 'bytes=2' },
      200,
      6,
      undefined,
      'peer!!',
      ['blobSize docker.io|nginx|D', 'blob docker.io|nginx|D'],
    ],
  ];
  for (const [name, request, status, length, contentRange, body, calls] of peer) {
    it(`local miss, ${name} from a peer → ${status}`, async () => {
      const w = world();
      const bytes = Buffer.from('peer!!');
      const digest = digestOf(bytes);
      w.peers.blobs.set(digest, bytes);
      const result = await createRegistryService(w.deps).blob(blobRequest({ digest, ...request }), signal);
      assert.equal(result.status, status);
      assert.equal(result.source, 'peer');
      assert.deepEqual(result.headers, {
        contentType: 'application/octet-stream',
        contentLength: length,
        digest,
        acceptRanges: 'bytes',
        ...(contentRange ? { contentRange } : {}),
      });
      assert.equal((await bodyOf(result))?.toString(), body);
      assert.deepEqual(
        w.peers.calls,
        calls.map((c) => c.replace('D', digest)),
      );
      assert.deepEqual(await mirrorCounts(w.registry), ['docker.io|blob|hit|peer=1']);
    });
  }

  it('416s an unsatisfiable range of a peer blob', async () => {
    const w = world();
    const bytes = Buffer.from('peer!!');
    const digest = digestOf(bytes);
    w.peers.blobs.set(digest, bytes);
    const error = await rejectsWith(
      createRegistryService(w.deps).blob(blobRequest({ digest, range: 'bytes=6-' }), signal),
      'RANGE_NOT_SATISFIABLE',
      416,
      'range "bytes=6-" is not satisfiable for a blob of 6 bytes',
    );
    assert.deepEqual(error.headers, { 'content-range': 'bytes */6' });
  });

  const blobMisses: Array<
    [name: string, request: Partial<BlobRequest>, withPeers: boolean, calls: string[], counts: string[]]
  > = [
    ['GET nobody holds', {}, true, ['blob docker.io|nginx|D'], ['docker.io|blob|miss|none=1']],
    [
      'HEAD nobody holds',
      { method: 'HEAD' },
      true,
      ['blobSize docker.io|nginx|D'],
      ['docker.io|blob|miss|none=1'],
    ],
    ['GET from a peer (loop guard)', { fromPeer: true }, true, [], []],
    ['HEAD from a peer (loop guard)', { method: 'HEAD', fromPeer: true }, true, [], []],
    ['GET without a PeerSource', {}, false, [], ['docker.io|blob|miss|none=1']],
  ];
  for (const [name, request, withPeers, calls, counts] of blobMisses) {
    it(`404s ${name}`, async () => {
      const w = world();
      const digest: Digest = `sha256:${'e'.repeat(64)}`;
      // For a loop-guarded request the peers do hold it: it must still not reach them.
      if (request.fromPeer) w.peers.blobs.set(digest, Buffer.from('x'));
      const deps = withPeers ? w.deps : { ...w.deps, peers: undefined };
      await rejectsWith(
        createRegistryService(deps).blob(blobRequest({ digest, ...request }), signal),
        'BLOB_UNKNOWN',
        404,
        `blob ${digest} is not held by this mirror`,
      );
      assert.deepEqual(
        w.peers.calls,
        calls.map((c) => c.replace('D', digest)),
      );
      assert.deepEqual(await mirrorCounts(w.registry), counts);
    });
  }

  it('serves a local blob to a peer without counting a mirror request', async () => {
    const w = world();
    const result = await createRegistryService(w.deps).blob(
      blobRequest({ digest: w.layerDigest, fromPeer: true }),
      signal,
    );
    assert.equal((await bodyOf(result))?.toString(), '0123456789abcdefghij');
    assert.deepEqual(await mirrorCounts(w.registry), []);
  });

  it('falls through to peers when the blob vanishes between info and read', async () => {
    const w = world({}, { read: async () => undefined });
    w.peers.blobs.set(w.layerDigest, w.layer);
    const result = await createRegistryService(w.deps).blob(blobRequest({ digest: w.layerDigest }), signal);
    assert.equal(result.source, 'peer');
  });

  it('works without metrics', async () => {
    const w = world({ metrics: undefined });
    const result = await createRegistryService(w.deps).blob(blobRequest({ digest: w.layerDigest }), signal);
    assert.equal(result.status, 200);
  });
});
