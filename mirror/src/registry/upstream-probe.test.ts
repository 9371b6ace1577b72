import { ManualClock } from '../../test-support/manual-clock.js';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createUpstreamProbe } from './upstream-probe.js';

describe('createUpstreamProbe', () => {
  const statusServers: Record<number, { server: Server; host: string; hits: string[] }> = {};
  let silent: TcpServer;
  let silentHost: string;
  const silentSockets: Socket[] = [];
  let refusedHost: string;

  before(async () => {
    let n = 20;
    for (const status of [200, 401, 404, 500]) {
      const hits: string[] = [];
      const server = createServer((req, res) => {
        hits.push(`${req.method} ${req.url}`);
        // A registry answers the ping slowly enough for concurrent callers to overlap.
        setTimeout(() => res.writeHead(status, { 'Content-Type': 'application/json' }).end('{}'), 30);
      });
      const address = `127.0.6.${n++}`;
      await new Promise<void>((resolve) => server.listen(0, address, resolve));
      statusServers[status] = {
        server,
        hits,
        host: `${address}:${(server.address() as { port: number }).port}`,
      };
    }
    silent = createTcpServer((socket) => {
      silentSockets.push(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.6.28', resolve));
    silentHost = `127.0.6.28:${(silent.address() as { port: number }).port}`;
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.6.29', resolve));
    refusedHost = `127.0.6.29:${(closed.address() as { port: number }).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
  });

  after(async () => {
    for (const { server } of Object.values(statusServers)) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    for (const s of silentSockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  const signal = (): AbortSignal => AbortSignal.timeout(5_000);

  const table: { name: string; host: () => string; want: boolean }[] = [
    { name: '200', host: () => statusServers[200]!.host, want: true },
    {
      name: '401 (auth required still means up)',
      host: () => statusServers[401]!.host,
      want: true,
    },
    { name: '404', host: () => statusServers[404]!.host, want: true },
    { name: '500', host: () => statusServers[500]!.host, want: true },
    { name: 'refused', host: () => refusedHost, want: false },
    { name: 'silent (timeout)', host: () => silentHost, want: false },
  ];
  for (const c of table) {
    it(`${c.name} → ${c.want ? 'reachable' : 'unreachable'}`, async () => {
      // Loopback hosts default to plain http, so no override is needed here.
      const probe = createUpstreamProbe({}, { timeout: 1_000 });
      assert.equal(await probe.reachable(c.host(), signal()), c.want);
    });
  }

  it('gives up on a silent upstream exactly at its timeout', async () => {
    const clock = new ManualClock();
    const probe = createUpstreamProbe({ clock }, { timeout: 1_000 });
    let answered = false;
    const answer = probe.reachable(silentHost, signal()).finally(() => (answered = true));
    await clock.tick(999);
    assert.equal(answered, false);
    await clock.tick(1);
    assert.equal(await answer, false);
  });

  it('asks GET /v2/ on the override base URL', async () => {
    const target = statusServers[401]!;
    target.hits.length = 0;
    const probe = createUpstreamProbe({}, { overrides: { 'docker.io': `http://${target.host}` } });
    assert.equal(await probe.reachable('docker.io', signal()), true);
    assert.deepEqual(target.hits, ['GET /v2/']);
  });

  it('caches answers for cacheTtl and shares concurrent probes', async () => {
    const target = statusServers[200]!;
    target.hits.length = 0;
    const clock = new ManualClock();
    const probe = createUpstreamProbe({ clock }, { cacheTtl: 5_000 });
    const answers = await Promise.all([1, 2, 3].map(() => probe.reachable(target.host, signal())));
    assert.deepEqual(answers, [true, true, true]);
    assert.equal(target.hits.length, 1, 'three concurrent callers share one request');
    clock.advance(4_999);
    assert.equal(await probe.reachable(target.host, signal()), true);
    assert.equal(target.hits.length, 1, 'still cached');
    clock.advance(2);
    assert.equal(await probe.reachable(target.host, signal()), true);
    assert.equal(target.hits.length, 2, 'probed again after the TTL');
  });

  it('reuses no answer with a TTL of 0', async () => {
    const target = statusServers[200]!;
    target.hits.length = 0;
    const probe = createUpstreamProbe({ clock: new ManualClock() }, { cacheTtl: 0, unreachableCacheTtl: 0 });
    assert.equal(await probe.reachable(target.host, signal()), true);
    assert.equal(await probe.reachable(target.host, signal()), true);
    assert.equal(target.hits.length, 2, 'each call probes');
  });

  it('by default reuses a reachable answer for 1 s and an unreachable one for 5 s', async () => {
    const target = statusServers[200]!;
    target.hits.length = 0;
    const clock = new ManualClock();
    const up = createUpstreamProbe({ clock }, {});
    assert.equal(await up.reachable(target.host, signal()), true);
    clock.advance(999);
    assert.equal(await up.reachable(target.host, signal()), true);
    assert.equal(target.hits.length, 1, 'still cached');
    clock.advance(2);
    assert.equal(await up.reachable(target.host, signal()), true);
    assert.equal(target.hits.length, 2, 'an upstream that just went down is noticed within a second');

    let calls = 0;
    const failing: typeof fetch = async () => {
      calls++;
      throw new TypeError('fetch failed');
    };
    const down = createUpstreamProbe({ fetch: failing, clock }, {});
    assert.equal(await down.reachable('registry.example', signal()), false);
    clock.advance(4_999);
    assert.equal(await down.reachable('registry.example', signal()), false);
    assert.equal(calls, 1, 'a dead upstream is not probed again within 5 s');
    clock.advance(2);
    assert.equal(await down.reachable('registry.example', signal()), false);
    assert.equal(calls, 2);
  });

  it('caches an unreachable answer too', async () => {
    let calls = 0;
    const failing: typeof fetch = async () => {
      calls++;
      throw new TypeError('fetch failed');
    };
    const probe = createUpstreamProbe({ fetch: failing }, {});
    assert.equal(await probe.reachable('ghcr.io', signal()), false);
    assert.equal(await probe.reachable('ghcr.io', signal()), false);
    assert.equal(await probe.reachable('quay.io', signal()), false);
    assert.equal(calls, 2);
  });

  it("rejects with the caller's abort reason without cancelling the shared probe", async () => {
    const target = statusServers[200]!;
    const probe = createUpstreamProbe({}, {});
    const controller = new AbortController();
    const first = probe.reachable(target.host, controller.signal);
    const second = probe.reachable(target.host, signal());
    controller.abort(new Error('request ended'));
    await assert.rejects(first, { message: 'request ended' });
    assert.equal(await second, true);
  });
});
