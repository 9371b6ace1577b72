// A userspace TCP proxy that makes a local server behave like a remote one: each direction is a
// link with a bandwidth limit and a one-way propagation delay (the kernel here has no netem).
// Bytes leave the bottleneck at `bytesPerSecond` and arrive `latencyMs` later, modelled on a
// virtual clock so timer jitter does not add up over a transfer.
import { createConnection, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** Options of {@link startThrottleProxy}. */
export interface ThrottleProxyOptions {
  /** Where to forward, `host:port`. */
  readonly target: string;
  /** Address to listen on, e.g. `127.0.1.1`. */
  readonly listenHost: string;
  /** Port to listen on; default 0 (ephemeral). */
  readonly listenPort?: number;
  /** Rate limit per direction and per connection, bytes/s; default unlimited. 100 Mbit/s = 12_500_000. */
  readonly bytesPerSecond?: number;
  /** One-way delay added in each direction, ms (RTT = 2 × latencyMs); default 0. */
  readonly latencyMs?: number;
  /**
   * What the rate limit applies to: `connection` (each TCP connection gets the full rate, like
   * a remote registry serving each client) or `proxy` (all connections share one rate per
   * direction, like one uplink every node sits behind). Default `connection`.
   */
  readonly limitScope?: 'connection' | 'proxy';
}

/** A running throttle proxy. */
export interface ThrottleProxy {
  /** `listenHost:port` to connect to instead of the target. */
  readonly hostPort: string;
  /** `http://hostPort`, for HTTP targets. */
  readonly url: string;
  /** Total bytes delivered target → client since start. */
  bytesDown(): number;
  /** Total bytes delivered client → target since start. */
  bytesUp(): number;
  /** Closes the listener and every open connection. */
  stop(): Promise<void>;
}

// Small pieces keep the pacing smooth; 16 KiB is ~1.3 ms at 100 Mbit/s.
const PIECE = 16 * 1024;
// Like a router's buffer: past this much queued data the sender is paused.
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

/** The virtual clock of a bottleneck: when it has sent everything handed to it so far. */
interface Bottleneck {
  busyUntil: number;
}

/** One direction of a connection: a bottleneck of `rate` bytes/s followed by `latency` ms of wire. */
class Link {
  private readonly queue: { data: Buffer; due: number }[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private finSent = false;
  delivered = 0;

  constructor(
    readonly direction: 'up' | 'down',
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly rate: number | undefined,
    private readonly latency: number,
    private readonly bottleneck: Bottleneck,
  ) {}

  push(chunk: Buffer): void {
    for (let offset = 0; offset < chunk.length; offset += PIECE) {
      const data = chunk.subarray(offset, offset + PIECE);
      const now = performance.now();
      const departs = this.rate
        ? Math.max(now, this.bottleneck.busyUntil) + (data.length * 1000) / this.rate
        : now;
      this.bottleneck.busyUntil = departs;
      this.queue.push({ data, due: departs + this.latency });
      this.queued += data.length;
    }
    if (this.queued > HIGH_WATER) this.from.pause();
    this.schedule();
  }

  end(): void {
    this.ended = true;
    this.schedule();
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.timer) return;
    const head = this.queue[0];
    if (!head) {
      if (this.ended && !this.finSent && !this.to.destroyed) {
        this.finSent = true;
        this.to.end();
      }
      return;
    }
    this.timer = setTimeout(() => this.flush(), Math.max(0, head.due - performance.now()));
  }

  private flush(): void {
    this.timer = undefined;
    // Deliver everything due now (timers fire late; the virtual clock keeps the average right).
    const now = performance.now() + 0.5;
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { data } = this.queue.shift()!;
      this.queued -= data.length;
      this.delivered += data.length;
      if (!this.to.destroyed) this.to.write(data);
    }
    if (this.queued < LOW_WATER && this.from.isPaused()) this.from.resume();
    this.schedule();
  }
}

function parseHostPort(value: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535)
    throw new Error(`startThrottleProxy: target must be host:port, got "${value}"`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/** Starts the proxy; resolves once it listens. */
export async function startThrottleProxy(options: ThrottleProxyOptions): Promise<ThrottleProxy> {
  const target = parseHostPort(options.target);
  const rate = options.bytesPerSecond;
  if (rate !== undefined && !(rate > 0))
    throw new Error(`startThrottleProxy: bytesPerSecond must be > 0, got ${rate}`);
  const latency = options.latencyMs ?? 0;
  if (!(latency >= 0)) throw new Error(`startThrottleProxy: latencyMs must be ≥ 0, got ${latency}`);
  const shared = options.limitScope === 'proxy';
  const sharedUp: Bottleneck = { busyUntil: 0 };
  const sharedDown: Bottleneck = { busyUntil: 0 };
  const sockets = new Set<Socket>();
  const links = new Set<Link>();
  let down = 0;
  let up = 0;

  // Half-open sockets: a FIN from one side must not cut data still queued for it.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({ ...target, allowHalfOpen: true });
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const toTarget = new Link('up', client, upstream, rate, latency, shared ? sharedUp : { busyUntil: 0 });
    const toClient = new Link(
      'down',
      upstream,
      client,
      rate,
      latency,
      shared ? sharedDown : { busyUntil: 0 },
    );
    links.add(toTarget);
    links.add(toClient);
    client.on('data', (chunk: Buffer) => toTarget.push(chunk));
    upstream.on('data', (chunk: Buffer) => toClient.push(chunk));
    // A FIN travels like data: it is passed on once the bytes before it have arrived.
    client.on('end', () => toTarget.end());
    upstream.on('end', () => toClient.end());
    let closed = false;
    const teardown = (): void => {
      if (closed) return;
      closed = true;
      up += toTarget.delivered;
      down += toClient.delivered;
      toTarget.delivered = 0;
      toClient.delivered = 0;
      toTarget.close();
      toClient.close();
      links.delete(toTarget);
      links.delete(toClient);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    // The client gone means nothing more can be delivered; the upstream closing only ends the
    // client once the delayed bytes have been delivered; an error (e.g. refused) resets both.
    client.on('close', teardown);
    upstream.on('close', () => toClient.end());
    client.on('error', teardown);
    upstream.on('error', teardown);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.listenHost, port: options.listenPort ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('startThrottleProxy: no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const hostPort = `${host}:${address.port}`;
  const inFlight = (direction: 'up' | 'down'): number =>
    [...links].reduce((total, link) => total + (link.direction === direction ? link.delivered : 0), 0);

  return {
    hostPort,
    url: `http://${hostPort}`,
    bytesDown: () => down + inFlight('down'),
    bytesUp: () => up + inFlight('up'),
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      for (const link of links) link.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
