// The access control of private registries against a real HTTP upstream with token auth (the
// Docker Hub / GHCR scheme): anonymous HEAD → 401 + Bearer challenge; a token from the realm is
// accepted for its repository only. Exact decisions, what is cached, and what never reaches it.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { OciError } from '../oci/errors.js';
import { createUpstreamAccess, type AccessRequest } from './upstream-access.js';

const HOST = '127.0.47.1';
const GOOD = 'Bearer token-for-org/app';
let base: string;
let registry: string;
let close: (() => void) | undefined;
after(() => close?.());
const seen: { method: string; url: string; authorization: string | undefined }[] = [];

before(async () => {
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    const repo = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(req.url ?? '')?.[1];
    if (repo === 'org/open') return void res.writeHead(200).end();
    if (repo === 'org/down') return void res.writeHead(503).end();
    if (req.headers.authorization === `Bearer token-for-${repo}`) return void res.writeHead(200).end();
    res
      .writeHead(401, {
        'www-authenticate': `Bearer realm="${base}/token",service="test",scope="repository:${repo}:pull"`,
      })
      .end();
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  close = () => {
    server.closeAllConnections();
    server.close();
  };
  const { port } = server.address() as { port: number };
  registry = `${HOST}:${port}`;
  base = `http://${registry}`;
});

function request(overrides: Partial<AccessRequest> = {}): AccessRequest {
  return {
    registry,
    repository: 'org/app',
    kind: 'blobs',
    reference: `sha256:${'a'.repeat(64)}`,
    fromPeer: false,
    peerAuthenticated: false,
    authorization: undefined,
    ...overrides,
  };
}

const signal = (): AbortSignal => AbortSignal.timeout(5_000);

async function rejection(promise: Promise<unknown>): Promise<OciError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OciError, String(error));
    return error;
  }
  assert.fail('resolved');
}

describe('createUpstreamAccess', () => {
  it('answers public for registries not listed, without asking anyone', async () => {
    const access = createUpstreamAccess({}, { registries: ['ghcr.io'] });
    seen.length = 0;
    assert.equal(await access.authorize(request(), signal()), 'public');
    assert.equal(await access.authorize(request({ registry: undefined }), signal()), 'public');
    assert.equal(access.isPrivate(registry), false);
    assert.equal(access.isPrivate('GHCR.io'), true);
    assert.deepEqual(seen, []);
  });

  it("challenges an anonymous request with the upstream's WWW-Authenticate, cached per repository", async () => {
    const access = createUpstreamAccess({}, { registries: [registry] });
    seen.length = 0;
    for (let i = 0; i < 3; i++) {
      const error = await rejection(access.authorize(request(), signal()));
      assert.equal(error.status, 401);
      assert.equal(error.code, 'UNAUTHORIZED');
      assert.deepEqual(error.headers, {
        'www-authenticate': `Bearer realm="${base}/token",service="test",scope="repository:org/app:pull"`,
      });
    }
    assert.deepEqual(seen, [
      { method: 'HEAD', url: `/v2/org/app/blobs/sha256:${'a'.repeat(64)}`, authorization: undefined },
    ]);
  });

  it('grants a token the upstream accepts for that repository, once per credential and object', async () => {
    const access = createUpstreamAccess({}, { registries: [registry] });
    seen.length = 0;
    assert.equal(await access.authorize(request({ authorization: GOOD }), signal()), 'private');
    assert.equal(await access.authorize(request({ authorization: GOOD }), signal()), 'private');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.authorization, GOOD);
    // The same token for another repository is checked again, and refused there.
    const other = await rejection(
      access.authorize(request({ authorization: GOOD, repository: 'org/other' }), signal()),
    );
    assert.equal(other.status, 404);
    assert.equal(other.message, `the upstream of ${registry} refused these credentials`);
    assert.equal(seen.length, 2);
  });

  it('sends manifests HEADs with the manifest Accept types', async () => {
    const access = createUpstreamAccess({}, { registries: [registry] });
    seen.length = 0;
    await access.authorize(request({ kind: 'manifests', reference: 'v1', authorization: GOOD }), signal());
    assert.deepEqual(
      seen.map((s) => s.url),
      ['/v2/org/app/manifests/v1'],
    );
  });

  it('refuses wrong credentials with 404 (containerd then asks upstream) and remembers briefly', async () => {
    let now = 1_000;
    const access = createUpstreamAccess({ now: () => now }, { registries: [registry], denyTtl: 5_000 });
    seen.length = 0;
    for (let i = 0; i < 2; i++) {
      const error = await rejection(access.authorize(request({ authorization: 'Bearer forged' }), signal()));
      assert.equal(error.status, 404);
    }
    assert.equal(seen.length, 1);
    now += 5_001;
    await rejection(access.authorize(request({ authorization: 'Bearer forged' }), signal()));
    assert.equal(seen.length, 2);
  });

  it('lets anonymous requests through when the upstream repository is open', async () => {
    const access = createUpstreamAccess({}, { registries: [registry] });
    assert.equal(await access.authorize(request({ repository: 'org/open' }), signal()), 'private');
  });

  it('answers 404 when the upstream cannot say (so containerd falls back to it)', async () => {
    const access = createUpstreamAccess({}, { registries: [registry, '127.0.47.9:1'] });
    const down = await rejection(access.authorize(request({ repository: 'org/down' }), signal()));
    assert.equal(down.status, 404);
    const unreachable = await rejection(
      access.authorize(request({ registry: '127.0.47.9:1', authorization: GOOD }), signal()),
    );
    assert.equal(unreachable.message, 'the upstream of 127.0.47.9:1 did not answer');
  });

  it('believes authenticated peers only', async () => {
    const access = createUpstreamAccess({}, { registries: [registry] });
    seen.length = 0;
    assert.equal(
      await access.authorize(request({ fromPeer: true, peerAuthenticated: true }), signal()),
      'private',
    );
    const error = await rejection(access.authorize(request({ fromPeer: true }), signal()));
    assert.equal(error.status, 404);
    assert.equal(error.message, `content of ${registry} is served to authenticated peers only`);
    assert.deepEqual(seen, []);
  });

  it('validates repository and reference before building an upstream URL', async () => {
    const access = createUpstreamAccess({}, { registries: [registry] });
    seen.length = 0;
    const cases: [Partial<AccessRequest>, string][] = [
      [{ repository: '../../etc' }, 'NAME_INVALID'],
      [{ reference: 'sha256:../../x' }, 'DIGEST_INVALID'],
      [{ kind: 'manifests', reference: 'v1/../../x' }, 'TAG_INVALID'],
    ];
    for (const [overrides, code] of cases) {
      const error = await rejection(access.authorize(request(overrides), signal()));
      assert.equal(error.code, code, JSON.stringify(overrides));
    }
    assert.deepEqual(seen, []);
  });
});
