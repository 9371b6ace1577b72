// Test helper: a cluster of real P2P routers, each with its peer server listening on its own
// 127.0.5.x address (port 0), sharing one static member source that join/crash edit.
import type { FastifyInstance } from 'fastify';
import { createIndexStore } from '../src/routing/index-store.js';
import { createStaticMembers, memberId, type StaticMemberSource } from '../src/routing/membership.js';
import { createP2PRouter, type P2PRouter, type P2PRouterOptions } from '../src/routing/p2p-router.js';
import { buildPeerApp } from '../src/routing/peer-server.js';
import type { ConformanceCluster, ConformanceNode } from './router-conformance.js';
import type { PeerClient } from '../src/routing/peer-client.js';

/** One node of a test cluster. */
export interface P2PTestNode extends ConformanceNode {
  readonly router: P2PRouter;
  readonly app: FastifyInstance;
  readonly host: string;
}

/** A test cluster of P2P routers on 127.0.5.x. */
export interface P2PTestCluster extends ConformanceCluster {
  readonly nodes: P2PTestNode[];
  readonly source: StaticMemberSource;
  join(): Promise<P2PTestNode>;
  /** Crashes a node but keeps it listed, as DNS still lists a crashed pod for a while. */
  kill(node: P2PTestNode): Promise<void>;
  /** Restarts a crashed node on the same address and port (an empty index, like a pod restart). */
  restart(node: P2PTestNode): Promise<P2PTestNode>;
}

/** Options of `startP2PCluster`. */
export interface P2PTestClusterOptions {
  readonly size: number;
  /** First host octet used: nodes bind 127.0.5.<firstHost + i>. @default 10 */
  readonly firstHost?: number;
  readonly router?: P2PRouterOptions;
  readonly client?: PeerClient;
}

/** Starts `size` nodes, loads the member set everywhere and returns the cluster. */
export async function startP2PCluster(options: P2PTestClusterOptions): Promise<P2PTestCluster> {
  const source = createStaticMembers([]);
  const nodes: P2PTestNode[] = [];
  const live = new Set<P2PTestNode>();
  // Killed nodes stay listed until restarted.
  const killed = new Set<string>();
  let nextHost = options.firstHost ?? 10;
  const routerOptions: P2PRouterOptions = {
    ttlSeconds: 1,
    refreshIntervalMs: 400,
    tickMs: 100,
    sweepIntervalMs: 500,
    // Generous: a loaded 2-core test machine opening fresh connections easily exceeds 20 ms.
    lookupTimeoutMs: 250,
    ...options.router,
    membership: { refreshIntervalMs: 200, dropAfterAbsentRefreshes: 1, ...options.router?.membership },
  };

  async function boot(host: string, port = 0): Promise<P2PTestNode> {
    const index = createIndexStore();
    // The server tells the router who called; the router is created once the port is known.
    const late: { router?: P2PRouter } = {};
    const app = buildPeerApp({ index, onCaller: (caller) => late.router?.peerSeen(caller) });
    await app.listen({ host, port });
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    const id = memberId(host, address.port);
    const router = createP2PRouter(
      { members: source, self: { id, registryUrl: `http://${host}:5000` }, index, client: options.client },
      routerOptions,
    );
    late.router = router;
    const node: P2PTestNode = { location: { id, registryUrl: `http://${host}:5000` }, router, app, host };
    live.add(node);
    return node;
  }

  const members = (): string[] => [...new Set([...[...live].map((n) => n.location.id), ...killed])];

  async function settle(): Promise<void> {
    for (let round = 0; round < 2; round++) {
      await Promise.all([...live].map((n) => n.router.sync(AbortSignal.timeout(5000))));
    }
  }

  for (let i = 0; i < options.size; i++) nodes.push(await boot(`127.0.5.${nextHost++}`));
  source.set(members());
  await Promise.all(nodes.map((n) => n.router.start()));

  const cluster: P2PTestCluster = {
    nodes,
    source,
    ttlMs: (routerOptions.ttlSeconds ?? 1) * 1000,
    lookupBudgetMs: routerOptions.lookupTimeoutMs ?? 20,
    async join() {
      const node = await boot(`127.0.5.${nextHost++}`);
      source.set(members());
      await node.router.start();
      return node;
    },
    async crash(node) {
      const target = node as P2PTestNode;
      live.delete(target);
      source.set(members());
      await target.router.close();
      await target.app.close();
    },
    async kill(node) {
      live.delete(node);
      killed.add(node.location.id);
      await node.router.close();
      node.app.server.closeAllConnections();
      await node.app.close();
    },
    async restart(node) {
      const port = Number(node.location.id.split(':').pop());
      const fresh = await boot(node.host, port);
      killed.delete(node.location.id);
      source.set(members());
      await fresh.router.start();
      return fresh;
    },
    settle,
    async close() {
      await Promise.all(
        [...live].map(async (n) => {
          await n.router.close();
          await n.app.close();
        }),
      );
      live.clear();
    },
  };
  return cluster;
}
