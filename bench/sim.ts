// Simulated member sets for the routing scenarios: many members in this process, each a real
// peer server (`buildPeerApp`) on its own loopback address with its own index share, speaking the
// real peer protocol over HTTP. Only the members that advertise or look up get a full P2P router;
// the others are passive owners, which is all an owner does in the protocol.
import type { FastifyInstance } from 'fastify';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createIndexStore, type IndexStore } from '../mirror/src/routing/index-store.js';
import { createStaticMembers, memberId, type StaticMemberSource } from '../mirror/src/routing/membership.js';
import { createP2PRouter, type P2PRouter, type P2PRouterOptions } from '../mirror/src/routing/p2p-router.js';
import { buildPeerApp } from '../mirror/src/routing/peer-server.js';

/** One simulated member. */
export interface SimMember {
  readonly host: string;
  readonly port: number;
  /** `host:port`, as the member source lists it. */
  readonly id: string;
  index: IndexStore;
  app: FastifyInstance;
  /** Its router, when it got one (`withRouter`). */
  router?: P2PRouter;
  alive: boolean;
}

/** A simulated cluster. */
export interface SimCluster {
  readonly members: SimMember[];
  readonly source: StaticMemberSource;
  /** Gives `member` a P2P router over its own index share and starts it. */
  withRouter(member: SimMember, options?: P2PRouterOptions): Promise<P2PRouter>;
  /** Crashes a member: cuts its connections, closes its server and router. */
  kill(member: SimMember): Promise<void>;
  /** Restarts a killed member on the same address and port, with an empty index (a pod restart). */
  restart(member: SimMember, options?: P2PRouterOptions): Promise<void>;
  /** Bytes read and written by every member's server sockets so far. */
  wireBytes(): number;
  close(): Promise<void>;
}

/** The `i`-th address of a block of /24s starting at `127.0.<firstSubnet>.1` (250 per subnet). */
export function simHost(firstSubnet: number, i: number): string {
  return `127.0.${firstSubnet + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/**
 * Starts `size` passive members on `127.0.<firstSubnet>.1…` (from the `offset`-th address on),
 * all listed in one static source.
 */
export async function startSim(size: number, firstSubnet: number, offset = 0): Promise<SimCluster> {
  const members: SimMember[] = [];
  const sockets = new Set<Socket>();
  let closedBytes = 0;

  async function listen(
    host: string,
    port: number,
    member: () => SimMember | undefined,
  ): Promise<{ index: IndexStore; app: FastifyInstance; port: number }> {
    const index = createIndexStore();
    // As in the daemon, the peer server tells the member's router who called (restart detection).
    const app = buildPeerApp({ index, onCaller: (caller) => member()?.router?.peerSeen(caller) });
    app.server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => {
        closedBytes += socket.bytesRead + socket.bytesWritten;
        sockets.delete(socket);
      });
    });
    await app.listen({ host, port });
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error(`no TCP address on ${host}`);
    return { index, app, port: address.port };
  }

  try {
    for (let i = 0; i < size; i++) {
      const host = simHost(firstSubnet, offset + i);
      const position = members.length;
      const { index, app, port } = await listen(host, 0, () => members[position]);
      members.push({ host, port, id: memberId(host, port), index, app, alive: true });
    }
  } catch (error) {
    await Promise.allSettled(members.map((m) => m.app.close()));
    throw error;
  }
  const source = createStaticMembers(members.map((m) => m.id));

  async function withRouter(member: SimMember, options: P2PRouterOptions = {}): Promise<P2PRouter> {
    const router = createP2PRouter(
      {
        members: source,
        self: { id: member.id, registryUrl: `http://${member.host}:5000` },
        index: member.index,
      },
      options,
    );
    member.router = router;
    await router.start();
    return router;
  }

  return {
    members,
    source,
    withRouter,
    async kill(member) {
      member.alive = false;
      await member.router?.close();
      member.app.server.closeAllConnections();
      await member.app.close();
    },
    async restart(member, options) {
      const hadRouter = member.router !== undefined;
      const { index, app } = await listen(member.host, member.port, () => member);
      member.index = index;
      member.app = app;
      member.alive = true;
      member.router = undefined;
      if (hadRouter) await withRouter(member, options);
    },
    wireBytes() {
      let bytes = closedBytes;
      for (const socket of sockets) bytes += socket.bytesRead + socket.bytesWritten;
      return bytes;
    },
    async close() {
      await Promise.allSettled(
        members
          .filter((m) => m.alive)
          .map(async (m) => {
            await m.router?.close();
            m.app.server.closeAllConnections();
            await m.app.close();
          }),
      );
    },
  };
}

/** Time in ms until a lookup of `key` ends, found or not, and whether it found a holder. */
export async function timeLookup(
  router: P2PRouter,
  key: string,
  timeoutMs: number,
): Promise<{ ms: number; found: boolean }> {
  const started = performance.now();
  let found = false;
  for await (const _holder of router.lookup(key, { signal: AbortSignal.timeout(timeoutMs), count: 1 })) {
    found = true;
    break;
  }
  return { ms: performance.now() - started, found };
}

/** Passive members hosted by child processes (`bench/sim-worker.ts`), each with its own event loop. */
export interface SimProcesses {
  /** Member ids of every child's members. */
  readonly ids: string[];
  close(): Promise<void>;
}

/**
 * Starts `size` passive members spread over `processes` child processes, on
 * `127.0.<firstSubnet>.…` from the `offset`-th address on (the parent keeps the first ones).
 */
export async function startSimProcesses(
  size: number,
  firstSubnet: number,
  offset: number,
  processes: number,
): Promise<SimProcesses> {
  const children: ChildProcess[] = [];
  const ids: string[] = [];
  const per = Math.ceil(size / processes);
  try {
    for (let p = 0; p < processes && p * per < size; p++) {
      const count = Math.min(per, size - p * per);
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(new URL('./sim-worker.ts', import.meta.url)),
          String(count),
          String(firstSubnet),
          String(offset + p * per),
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      children.push(child);
      const line = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('\n')) resolve(text.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`sim worker exited with ${code}`)));
      });
      ids.push(...(JSON.parse(line) as string[]));
    }
  } catch (error) {
    for (const child of children) child.kill();
    throw error;
  }
  return {
    ids,
    async close() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.stdin!.end(); // the worker closes its members and exits when stdin ends
            }),
        ),
      );
    },
  };
}
