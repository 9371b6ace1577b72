// Timing test of the throttle proxy against local TCP servers (no external binaries, but it
// measures wall-clock time, so it runs with the integration tests rather than the unit tests).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { startThrottleProxy, type ThrottleProxy } from './throttle-proxy.js';

const HOST = '127.0.1.1';
const servers: Server[] = [];
const proxies: ThrottleProxy[] = [];

async function listen(handler: (socket: Socket) => void): Promise<string> {
  const server = createServer({ allowHalfOpen: true }, handler);
  servers.push(server);
  server.listen(0, HOST);
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return `${HOST}:${address.port}`;
}

function connect(hostPort: string): Promise<Socket> {
  const [host, port] = hostPort.split(':');
  const socket = createConnection({ host: host!, port: Number(port) });
  return once(socket, 'connect').then(() => socket);
}

let sinkTarget: string;
let echoTarget: string;
const PAYLOAD = 3 * 1024 * 1024;

before(async () => {
  // Sends PAYLOAD bytes as fast as it can, then closes.
  sinkTarget = await listen((socket) => {
    socket.end(Buffer.alloc(PAYLOAD, 7));
    socket.on('error', () => {});
  });
  echoTarget = await listen((socket) => {
    socket.pipe(socket);
    socket.on('error', () => {});
  });
});

after(async () => {
  for (const proxy of proxies) await proxy.stop();
  for (const server of servers) server.close();
});

describe('startThrottleProxy', () => {
  it('delivers at the configured rate (within 20%), and all of the bytes', { timeout: 20000 }, async (t) => {
    const bytesPerSecond = 4 * 1024 * 1024;
    const proxy = await startThrottleProxy({
      target: sinkTarget,
      listenHost: HOST,
      bytesPerSecond,
      latencyMs: 5,
    });
    proxies.push(proxy);
    const socket = await connect(proxy.hostPort);
    let received = 0;
    let first = 0;
    let last = 0;
    socket.on('data', (chunk: Buffer) => {
      if (received === 0) first = performance.now();
      received += chunk.length;
      last = performance.now();
    });
    await once(socket, 'end');
    socket.destroy();
    assert.equal(received, PAYLOAD);
    assert.equal(proxy.bytesDown(), PAYLOAD);
    const rate = (received - 16 * 1024) / ((last - first) / 1000);
    t.diagnostic(`one connection: ${Math.round(rate)} B/s for ${bytesPerSecond} B/s`);
    assert.ok(
      Math.abs(rate - bytesPerSecond) / bytesPerSecond < 0.2,
      `measured ${Math.round(rate)} B/s, set ${bytesPerSecond} B/s`,
    );
  });

  it(
    'shares one rate between connections with limitScope proxy (within 20%)',
    { timeout: 20000 },
    async (t) => {
      const bytesPerSecond = 8 * 1024 * 1024;
      const proxy = await startThrottleProxy({
        target: sinkTarget,
        listenHost: HOST,
        bytesPerSecond,
        limitScope: 'proxy',
      });
      proxies.push(proxy);
      const sockets = await Promise.all([connect(proxy.hostPort), connect(proxy.hostPort)]);
      // First to last byte over both connections: connection setup is not part of the link.
      let first = 0;
      let last = 0;
      const sizes = await Promise.all(
        sockets.map(async (socket) => {
          let received = 0;
          socket.on('data', (chunk: Buffer) => {
            if (first === 0) first = performance.now();
            received += chunk.length;
            last = performance.now();
          });
          await once(socket, 'end');
          socket.destroy();
          return received;
        }),
      );
      const rate = (2 * PAYLOAD - 16 * 1024) / ((last - first) / 1000);
      t.diagnostic(`two connections, shared: ${Math.round(rate)} B/s for ${bytesPerSecond} B/s`);
      assert.deepEqual(sizes, [PAYLOAD, PAYLOAD]);
      assert.ok(
        Math.abs(rate - bytesPerSecond) / bytesPerSecond < 0.2,
        `measured ${Math.round(rate)} B/s in total, set ${bytesPerSecond} B/s`,
      );
    },
  );

  it(
    'adds the one-way delay in each direction (round trip within 20% of 2 × latencyMs)',
    { timeout: 20000 },
    async (t) => {
      const latencyMs = 40;
      const proxy = await startThrottleProxy({ target: echoTarget, listenHost: HOST, latencyMs });
      proxies.push(proxy);
      const socket = await connect(proxy.hostPort);
      const rtts: number[] = [];
      for (let i = 0; i < 5; i++) {
        const sent = performance.now();
        socket.write(`ping ${i}`);
        const [reply] = (await once(socket, 'data')) as [Buffer];
        rtts.push(performance.now() - sent);
        assert.equal(reply.toString(), `ping ${i}`);
      }
      socket.destroy();
      const median = [...rtts].sort((a, b) => a - b)[2]!;
      t.diagnostic(`round trips ${rtts.map((r) => r.toFixed(1)).join(', ')} ms for ${latencyMs} ms each way`);
      assert.ok(
        Math.abs(median - 2 * latencyMs) / (2 * latencyMs) < 0.2,
        `median RTT ${median.toFixed(1)} ms, expected ${2 * latencyMs} ms (${rtts.map((r) => r.toFixed(1)).join(', ')})`,
      );
    },
  );

  it(
    'passes the bytes on unchanged without limits, and resets the client when the target refuses',
    { timeout: 10000 },
    async () => {
      const plain = await startThrottleProxy({ target: echoTarget, listenHost: HOST });
      proxies.push(plain);
      const socket = await connect(plain.hostPort);
      socket.write('hello');
      const [reply] = (await once(socket, 'data')) as [Buffer];
      assert.equal(reply.toString(), 'hello');
      socket.destroy();

      const closedPort = await listen(() => {});
      servers.at(-1)!.close();
      const refused = await startThrottleProxy({ target: closedPort, listenHost: HOST });
      proxies.push(refused);
      const doomed = await connect(refused.hostPort);
      doomed.on('error', () => {});
      await once(doomed, 'close');
    },
  );

  const bad: { options: Parameters<typeof startThrottleProxy>[0]; message: string }[] = [
    {
      options: { target: 'nohost', listenHost: HOST },
      message: 'startThrottleProxy: target must be host:port, got "nohost"',
    },
    {
      options: { target: 'h:1', listenHost: HOST, bytesPerSecond: 0 },
      message: 'startThrottleProxy: bytesPerSecond must be > 0, got 0',
    },
    {
      options: { target: 'h:1', listenHost: HOST, latencyMs: -1 },
      message: 'startThrottleProxy: latencyMs must be ≥ 0, got -1',
    },
  ];
  for (const { options, message } of bad) {
    it(`rejects ${JSON.stringify(options)}`, async () => {
      await assert.rejects(startThrottleProxy(options), { message });
    });
  }
});
