import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createIndexStore } from './index-store.js';
import { PeerError } from '../peer-transport/peer-error.js';
import { createHttpPeerClient, MAX_ANSWER_BYTES } from './peer-client.js';
import { buildPeerApp } from './peer-server.js';
import type { PeerCaller } from './protocol.js';

const HOLDER = { id: '127.0.5.40:5001', registryUrl: 'http://127.0.5.40:5000' };
const D1 = 'sha256:' + 'c'.repeat(64);
const SECRET = 'test-secret';
const hmac = (method: string, url: string, body: string | Buffer): string =>
  createHmac('sha256', SECRET).update(`${method} ${url}\n`).update(body).digest('hex');

function listen(server: Server | HttpServer, host: string): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, host, () => {
      const address = server.address();
      resolve(`http://${host}:${typeof address === 'object' && address ? address.port : 0}`);
    }),
  );
}

describe('HTTP peer client', () => {
  const index = createIndexStore();
  const callers: PeerCaller[] = [];
  const app = buildPeerApp({
    index,
    authenticate: (r) => r.headers['x-test-signature'] === hmac(r.method, r.url, r.body),
    onCaller: (caller) => callers.push(caller),
  });
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket)); // accepts, never answers
  const odd = createHttpServer((request, response) => {
    if (request.url?.includes('text')) response.end('not json');
    else if (request.url?.includes('huge'))
      response.writeHead(200, { 'content-length': String(5 * 1024 * 1024) }).end();
    else response.writeHead(503).end(JSON.stringify({ error: 'overloaded' }));
  });
  let peerUrl = '';
  let silentUrl = '';
  let oddUrl = '';
  let refusedUrl = '';
  before(async () => {
    await app.listen({ host: '127.0.5.41', port: 0 });
    const address = app.server.address();
    peerUrl = `http://127.0.5.41:${typeof address === 'object' && address ? address.port : 0}`;
    silentUrl = await listen(silent, '127.0.5.42');
    oddUrl = await listen(odd, '127.0.5.43');
    const closed = createServer();
    refusedUrl = await listen(closed, '127.0.5.44');
    await new Promise((resolve) => closed.close(resolve));
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all([app.close(), new Promise((r) => silent.close(r)), new Promise((r) => odd.close(r))]);
  });

  const client = createHttpPeerClient({
    lookupTimeoutMs: 150,
    writeTimeoutMs: 150,
    sign: ({ method, url, body }) => ({ 'x-test-signature': hmac(method, url, body) }),
  });

  it('advertises, looks up and withdraws over HTTP with signed requests', async () => {
    // Default timeouts: the first request to a fresh server may be slow on a busy test machine.
    const client = createHttpPeerClient({
      sign: ({ method, url, body }) => ({ 'x-test-signature': hmac(method, url, body) }),
    });
    const boot = index.bootId;
    assert.deepEqual(await client.advertise(peerUrl, { holder: HOLDER, ttlSeconds: 30, keys: [D1] }), {
      accepted: 1,
      boot,
    });
    const found = await client.lookup(peerUrl, D1);
    assert.deepEqual(
      found.holders[D1]!.map((h) => ({ id: h.id, registryUrl: h.registryUrl })),
      [HOLDER],
    );
    assert.deepEqual(await client.withdraw(peerUrl, { holder: HOLDER, keys: [D1] }), { removed: 1, boot });
    assert.deepEqual(await client.lookup(peerUrl, D1), { holders: { [D1]: [] }, boot });
  });

  it('names its sender in the signed query of every call when given one', async () => {
    const client = createHttpPeerClient({
      sign: ({ method, url, body }) => ({ 'x-test-signature': hmac(method, url, body) }),
    });
    const caller = { id: '[fd00::7]:5001', boot: 'Zm9v-YmFy_1' };
    callers.length = 0;
    await client.advertise(peerUrl, { holder: HOLDER, ttlSeconds: 30, keys: [D1] }, undefined, caller);
    await client.lookup(peerUrl, D1, undefined, caller);
    await client.withdraw(peerUrl, { holder: HOLDER, keys: [D1] }, undefined, caller);
    assert.deepEqual(callers, [caller, caller, caller]);
  });

  it('accepts answers of older peers without a boot id (rolling upgrade)', async () => {
    const old = createHttpServer((request, response) => {
      response.setHeader('content-type', 'application/json');
      if (request.url?.startsWith('/peili/v1/lookup'))
        response.end(JSON.stringify({ holders: { [D1]: [] } }));
      else if (request.url?.startsWith('/peili/v1/advertise')) response.end(JSON.stringify({ accepted: 1 }));
      else response.end(JSON.stringify({ removed: 0 }));
    });
    const oldUrl = await listen(old, '127.0.5.45');
    after(() => new Promise((r) => old.close(r)));
    const caller = { id: '127.0.5.40:5001', boot: 'abc' };
    assert.deepEqual(await client.lookup(oldUrl, D1, undefined, caller), { holders: { [D1]: [] } });
    assert.deepEqual(
      await client.advertise(oldUrl, { holder: HOLDER, ttlSeconds: 30, keys: [D1] }, undefined, caller),
      { accepted: 1 },
    );
    assert.deepEqual(await client.withdraw(oldUrl, { holder: HOLDER, keys: [D1] }, undefined, caller), {
      removed: 0,
    });
  });

  it('reports a rejected signature as a status failure with the server message', async () => {
    const unsigned = createHttpPeerClient();
    await assert.rejects(unsigned.lookup(peerUrl, D1), (error: unknown) => {
      assert.ok(error instanceof PeerError);
      assert.equal(error.reason, 'status');
      assert.equal(error.status, 401);
      assert.equal(
        error.message,
        `GET /peili/v1/lookup?key=${encodeURIComponent(D1)}: 401 peer authentication failed`,
      );
      return true;
    });
  });

  const failures: [string, () => string, 'timeout' | 'refused' | 'status' | 'protocol', string][] = [
    ['a peer that never answers', () => silentUrl, 'timeout', 'no answer within 150 ms'],
    ['a closed port', () => refusedUrl, 'refused', 'connection refused'],
    ['a 503', () => oddUrl, 'status', '503 overloaded'],
  ];
  for (const [name, url, reason, detail] of failures) {
    it(`fails with reason ${reason} on ${name}`, async () => {
      // Only the silent peer may run into the short timeout; on a busy machine the others could too.
      const caller = reason === 'timeout' ? client : createHttpPeerClient({ writeTimeoutMs: 10_000 });
      await assert.rejects(caller.advertise(url(), { holder: HOLDER, ttlSeconds: 30, keys: [D1] }), {
        name: 'PeerError',
        reason,
        message: `POST /peili/v1/advertise: ${detail}`,
      });
    });
  }

  it('fails with reason protocol on an answer that is not JSON', async () => {
    await assert.rejects(createHttpPeerClient().lookup(oddUrl, 'docker.io/text/app:v1'), {
      reason: 'protocol',
      message: 'GET /peili/v1/lookup?key=docker.io%2Ftext%2Fapp%3Av1: answer is not JSON',
    });
  });

  it('refuses to read an answer larger than MAX_ANSWER_BYTES', async () => {
    await assert.rejects(createHttpPeerClient().lookup(oddUrl, 'docker.io/huge/app:v1'), {
      reason: 'protocol',
      message: `GET /peili/v1/lookup?key=docker.io%2Fhuge%2Fapp%3Av1: answer of ${5 * 1024 * 1024} bytes exceeds ${MAX_ANSWER_BYTES}`,
    });
  });

  it('fails with reason aborted when the caller aborts', async () => {
    const controller = new AbortController();
    // A long timeout of its own, so only the caller's abort can end the call.
    const patient = createHttpPeerClient({ lookupTimeoutMs: 10_000 });
    // Aborted once the silent peer holds the connection (it never answers).
    silent.once('connection', () => controller.abort());
    const call = patient.lookup(silentUrl, D1, controller.signal);
    await assert.rejects(call, {
      reason: 'aborted',
      message: `GET /peili/v1/lookup?key=${encodeURIComponent(D1)}: aborted by the caller`,
    });
  });
});
