import { EventEmitter, once } from 'node:events';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AccessControl } from '../access/upstream-access.js';
import { createPeerAuth } from '../peer-auth/peer-auth.js';
import { createPeerTls, type PeerTls } from '../peer-tls/peer-tls.js';
import { createTestCa, type TestCert } from '../../test-support/test-ca.js';
import type { PeerSource } from '../registry/peer-source.js';
import { createRegistryService } from '../registry/registry-service.js';
import { createIndexStore } from '../routing/index-store.js';
import { PeerError } from '../peer-transport/peer-error.js';
import { createHttpPeerClient } from '../routing/peer-client.js';
import { buildPeerApp } from '../routing/peer-server.js';
import { MemoryStore } from '../../test-support/memory-store.js';
import { buildApp } from './app.js';
import { createPeerListener, type PeerListener } from './peer-listener.js';

const NAME = 'peili-peer.test';
const HOLDER = { id: '127.0.0.9:5001', registryUrl: 'https://127.0.0.9:5001' };

/** A peer source that must never be asked: peer requests are served from local content only. */
function forbiddenPeers(asked: string[]): PeerSource {
  return {
    async manifest(request) {
      asked.push(`manifest ${request.reference}`);
      return undefined;
    },
    async blobSize(request) {
      asked.push(`blobSize ${request.digest}`);
      return undefined;
    },
    async blob(request) {
      asked.push(`blob ${request.digest}`);
      return undefined;
    },
  };
}

interface Answer {
  status: number;
  body: string;
}

/** One GET over TLS with `options` (client certificate, CA, name); rejects with the error's code. */
function tlsGet(port: number, path: string, options: object): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        headers: { 'x-peili-mirrored': 'true' },
        ...options,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end();
  });
}

describe('the mutual-TLS peer listener', () => {
  let dir: string;
  let peerTls: PeerTls;
  let peer: TestCert;
  let wrongName: TestCert;
  let foreign: TestCert;
  let otherCaCert: string;
  let listener: PeerListener;
  let port: number;
  let routerUrl: string;
  const refused: string[] = [];
  const refusals = new EventEmitter();
  const asked: string[] = [];
  const store = new MemoryStore();
  const blob = store.addBlob(Buffer.from('layer bytes over TLS'), {
    'containerd.io/distribution.source.docker.io': 'library/app',
  });
  const blobPath = `/v2/library/app/blobs/${blob.digest}?ns=docker.io`;
  const missingPath = `/v2/library/app/blobs/sha256:${'1'.repeat(64)}?ns=docker.io`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peili-peer-listener-'));
    const ca = await createTestCa(dir, 'ca');
    const otherCa = await createTestCa(dir, 'other-ca');
    otherCaCert = otherCa.cert;
    peer = await ca.issue('peer', [NAME]);
    wrongName = await ca.issue('wrong-name', ['not-a-peer.test']);
    foreign = await otherCa.issue('foreign', [NAME]);
    peerTls = createPeerTls({ cert: peer.cert, key: peer.key, ca: ca.cert, name: NAME });

    const index = createIndexStore();
    index.add(HOLDER, [blob.digest], 300);
    const service = createRegistryService({ store, peers: forbiddenPeers(asked) });
    listener = createPeerListener(
      { registry: buildApp({ service }, { peerRequests: 'only' }), router: buildPeerApp({ index }) },
      {
        tls: peerTls.serverOptions,
        checkPeer: (socket) => peerTls.checkPeer(socket),
        onRefused: (reason) => {
          refused.push(reason);
          refusals.emit('refused');
        },
      },
    );
    await listener.listen('127.0.0.1', 0);
    port = (listener.server.address() as AddressInfo).port;
    routerUrl = `https://127.0.0.1:${port}`;
  });
  after(async () => {
    await listener.close(1_000);
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the peer protocol to a peer holding the cluster certificate (name checked, not the IP)', async () => {
    const client = createHttpPeerClient({ tls: peerTls.clientOptions });
    const answer = await client.lookup(routerUrl, blob.digest);
    assert.deepEqual(
      (answer.holders[blob.digest] ?? []).map((holder) => holder.registryUrl),
      [HOLDER.registryUrl],
    );
  });

  it('serves content to that peer, from local content only', async () => {
    const answer = await tlsGet(port, blobPath, peerTls.clientOptions);
    assert.deepEqual(answer, { status: 200, body: 'layer bytes over TLS' });
    // Without the loop-guard header too: nothing on this port is ever relayed to other peers.
    const unguarded = await tlsGet(port, missingPath, { ...peerTls.clientOptions, headers: {} });
    assert.equal(unguarded.status, 404);
    assert.deepEqual(asked, []);
  });

  it('refuses a client certificate of the same CA without the peer name, before any request', async () => {
    const before = refused.length;
    await assert.rejects(
      tlsGet(port, blobPath, { ...peerTls.clientOptions, cert: wrongName.cert, key: wrongName.key }),
      (error: NodeJS.ErrnoException) => {
        assert.equal(error.code, 'ECONNRESET');
        return true;
      },
    );
    assert.deepEqual(refused.slice(before), [
      `client certificate: Hostname/IP does not match certificate's altnames: Host: ${NAME}. is not in the cert's altnames: DNS:not-a-peer.test`,
    ]);
  });

  const handshakeRefusals: {
    name: string;
    options: () => object;
    code: string | RegExp;
    /** What the server reports: the handshake itself fails (not only the later name check). */
    server?: RegExp;
  }[] = [
    {
      name: 'a client certificate of another CA',
      options: () => ({ ...peerTls.clientOptions, cert: foreign.cert, key: foreign.key }),
      code: /^(ECONNRESET|ERR_SSL_TLSV1_ALERT_UNKNOWN_CA)$/,
      // The code varies (the client may hang up first); what matters is that the handshake failed.
      server: /^TLS handshake failed: /,
    },
    {
      name: 'a client without certificate',
      options: () => ({ ...peerTls.clientOptions, cert: undefined, key: undefined }),
      code: /^(ECONNRESET|ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED)$/,
      server: /^TLS handshake failed: ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE$/,
    },
    {
      name: 'a client limited to TLS 1.2',
      options: () => ({ ...peerTls.clientOptions, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }),
      code: 'EPROTO',
    },
    {
      name: 'a client trusting another CA (the server is not believed)',
      options: () => ({ ...peerTls.clientOptions, ca: otherCaCert }),
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    },
    {
      name: 'a client expecting another name (the server is not believed)',
      options: () => ({ ...peerTls.clientOptions, servername: 'someone-else.test' }),
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    },
  ];
  for (const refusal of handshakeRefusals) {
    it(`no exchange with ${refusal.name}`, async () => {
      const before = refused.length;
      await assert.rejects(tlsGet(port, blobPath, refusal.options()), (error: NodeJS.ErrnoException) => {
        if (typeof refusal.code === 'string') assert.equal(error.code, refusal.code);
        else assert.match(error.code ?? String(error), refusal.code);
        return true;
      });
      if (refusal.server === undefined) return;
      if (refused.length === before) await once(refusals, 'refused');
      assert.equal(refused.length, before + 1, refused.slice(before).join('; '));
      assert.match(refused[before]!, refusal.server);
    });
  }

  it('the peer client reports a refused handshake as a network failure with its code', async () => {
    const client = createHttpPeerClient({ tls: { ...peerTls.clientOptions, ca: otherCaCert } });
    await assert.rejects(client.lookup(routerUrl, blob.digest), {
      name: 'PeerError',
      reason: 'network',
      message: `GET /peili/v1/lookup?key=${encodeURIComponent(blob.digest)}: SELF_SIGNED_CERT_IN_CHAIN`,
    });
    const plain = createHttpPeerClient();
    await assert.rejects(plain.lookup(routerUrl, blob.digest), (error: unknown) => {
      assert.ok(error instanceof PeerError);
      assert.equal(error.reason, 'network');
      return true;
    });
  });

  it('an HTTPS call to a plain-HTTP router (a daemon without TLS) fails its handshake', async () => {
    const plainRouter = buildPeerApp({ index: createIndexStore() });
    await plainRouter.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port: plainPort } = plainRouter.server.address() as AddressInfo;
      const client = createHttpPeerClient({ tls: peerTls.clientOptions });
      await assert.rejects(client.lookup(`https://127.0.0.1:${plainPort}`, blob.digest), {
        name: 'PeerError',
        reason: 'network',
        message: `GET /peili/v1/lookup?key=${encodeURIComponent(blob.digest)}: EPROTO`,
      });
    } finally {
      await plainRouter.close();
    }
  });

  it('answers nothing to plain HTTP on the TLS port', async () => {
    const answer = await new Promise<string>((resolve) => {
      const request = httpRequest(
        { host: '127.0.0.1', port, path: blobPath, headers: { 'x-peili-mirrored': 'true' } },
        (response) => resolve(`status ${response.statusCode}`),
      );
      request.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`));
      request.end();
    });
    assert.doesNotMatch(answer, /^status 2/);
    assert.match(answer, /^(error ECONNRESET|status 400)$/);
  });
});

describe('the registry routes of the mutual-TLS listener (peerRequests: only)', () => {
  const store = new MemoryStore();
  const blob = store.addBlob(Buffer.from('layer bytes'), {
    'containerd.io/distribution.source.docker.io': 'library/app',
  });
  const url = `/v2/library/app/blobs/${blob.digest}?ns=docker.io`;

  it('still require the HMAC signature when a peer secret is configured too', async () => {
    const auth = createPeerAuth('a-cluster-secret-of-32-bytes-xxx');
    const app = buildApp(
      { service: createRegistryService({ store }), authenticatePeer: auth.verify },
      { peerRequests: 'only' },
    );
    assert.equal((await app.inject({ method: 'GET', url })).statusCode, 401);
    const signed = await app.inject({
      method: 'GET',
      url,
      headers: auth.sign({ method: 'GET', url, body: '' }),
    });
    assert.equal(signed.statusCode, 200);
  });

  it('count as authenticated peers for private registries (the connection proved it)', async () => {
    const seen: boolean[] = [];
    const control: AccessControl = {
      isPrivate: () => true,
      async authorize(request) {
        seen.push(request.fromPeer && request.peerAuthenticated);
        return 'private';
      },
    };
    const service = createRegistryService({ store });
    for (const peerRequests of ['only', 'accept'] as const) {
      const app = buildApp({ service, access: { control, privateService: service } }, { peerRequests });
      await app.inject({ method: 'GET', url, headers: { 'x-peili-mirrored': 'true' } });
    }
    assert.deepEqual(seen, [true, false]);
  });
});

describe('the plain registry port when peers speak mutual TLS', () => {
  const store = new MemoryStore();
  const blob = store.addBlob(Buffer.from('layer bytes'), {
    'containerd.io/distribution.source.docker.io': 'library/app',
  });
  const url = `/v2/library/app/blobs/${blob.digest}?ns=docker.io`;

  it('refuses loop-guarded (peer) requests with 403, so content never crosses nodes in clear text', async () => {
    const app = buildApp({ service: createRegistryService({ store }) }, { peerRequests: 'refuse' });
    const response = await app.inject({ method: 'GET', url, headers: { 'x-peili-mirrored': 'true' } });
    assert.equal(response.statusCode, 403);
    assert.deepEqual(JSON.parse(response.body), {
      errors: [{ code: 'DENIED', message: 'peer requests are served only on the mutual-TLS peer port' }],
    });
  });

  it('still serves the local containerd', async () => {
    const app = buildApp({ service: createRegistryService({ store }) }, { peerRequests: 'refuse' });
    const response = await app.inject({ method: 'GET', url });
    assert.equal(response.statusCode, 200);
    assert.equal(response.body, 'layer bytes');
  });

  it('serves peers in plain mode (the default), the case the refusal above changes', async () => {
    const app = buildApp({ service: createRegistryService({ store }) });
    const response = await app.inject({ method: 'GET', url, headers: { 'x-peili-mirrored': 'true' } });
    assert.equal(response.statusCode, 200);
  });
});
