// A whole test cluster in one call: one upstream registry (optionally behind a throttle proxy so
// it behaves like a remote one) and N containerd nodes, each with its own loopback address.
// It knows nothing about the Peili daemon: tests start that themselves against `nodes[i]`.
import { join } from 'node:path';
import {
  startContainerd,
  type ContainerdNode,
  type ContainerdOptions,
  type Snapshotter,
} from './containerd.js';
import { upstreamHostsToml, writeHostsToml } from './hosts-toml.js';
import { startRegistry, type RegistryProcess } from './registry.js';
import { startThrottleProxy, type ThrottleProxy, type ThrottleProxyOptions } from './throttle-proxy.js';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Number of containerd nodes (0 or more). */
  readonly nodes: number;
  /** Scratch directory; the registry goes to `<dir>/registry`, node i to `<dir>/node<i+1>`. */
  readonly dir: string;
  /** Loopback address of the registry; default `127.0.0.1`. */
  readonly registryHost?: string;
  /** Loopback address of each node (used as its CRI stream address; give the same to your daemon). Default `127.0.0.<i+2>`. */
  readonly nodeHosts?: readonly string[];
  /** Snapshotter of every node; default `overlayfs`. */
  readonly snapshotter?: Snapshotter;
  /**
   * Put throttle proxies in front of the registry (e.g. `{ bytesPerSecond: 12_500_000, latencyMs: 10 }`
   * for 100 Mbit/s and 20 ms RTT). `perNode: true` gives each node its own proxy on the node's
   * address, with the rate shared by all its connections (each node's own link); otherwise one
   * proxy on the registry address serves every node (`limitScope` as given, default per connection).
   */
  readonly throttle?: Pick<ThrottleProxyOptions, 'bytesPerSecond' | 'latencyMs' | 'limitScope'> & {
    readonly perNode?: boolean;
  };
  /**
   * Registry hosts (e.g. `docker.io`, `ghcr.io`) that every node resolves against its upstream
   * (the registry or its proxy) through a hosts.toml; default none.
   */
  readonly upstreamFor?: readonly string[];
  /** Per-node containerd choices (by index): its runtime, its CRI parts (2.x); default the bed's. */
  readonly containerd?: (index: number) => Pick<ContainerdOptions, 'runtime' | 'criParts'>;
}

/** An address to reach a registry at. */
export interface Endpoint {
  /** `http://host:port` */
  readonly url: string;
  /** `host:port` */
  readonly hostPort: string;
}

/** A node of the cluster: a containerd daemon, its loopback address and the upstream it pulls from. */
export type ClusterNode = ContainerdNode & {
  readonly host: string;
  /** The registry, or this node's throttle proxy in front of it. */
  readonly upstream: Endpoint;
};

/** A running cluster. */
export interface Cluster {
  readonly registry: RegistryProcess;
  /** The shared throttle proxy, when `throttle` was given without `perNode`. */
  readonly proxy?: ThrottleProxy;
  /** Every throttle proxy started (one shared, or one per node in node order). */
  readonly proxies: ThrottleProxy[];
  /** What nodes pull from when there is no per-node proxy: the shared proxy, else the registry. */
  readonly upstream: Endpoint;
  readonly nodes: ClusterNode[];
  /** Stops the nodes, then the proxies, then the registry; safe to call twice. */
  stop(): Promise<void>;
}

async function settleAll(fns: readonly (() => Promise<void>)[]): Promise<unknown[]> {
  const results = await Promise.allSettled(fns.map((fn) => fn()));
  return results
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => r.reason as unknown);
}

/** Starts a registry and `nodes` containerd daemons; on any failure, stops what was started and rethrows. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 0) {
    throw new Error(`startCluster: nodes must be a whole number ≥ 0, got ${options.nodes}`);
  }
  const hosts = options.nodeHosts ?? Array.from({ length: options.nodes }, (_, i) => `127.0.0.${i + 2}`);
  if (hosts.length < options.nodes) {
    throw new Error(`startCluster: nodeHosts has ${hosts.length} addresses for ${options.nodes} nodes`);
  }
  const registryHost = options.registryHost ?? '127.0.0.1';
  const started = {
    nodes: [] as ContainerdNode[],
    proxies: [] as ThrottleProxy[],
    registry: undefined as RegistryProcess | undefined,
  };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // Nodes first (they may be mid-pull), then the proxies, then the registry behind them.
      const errors = [
        ...(await settleAll(started.nodes.map((node) => () => node.stop()))),
        ...(await settleAll(started.proxies.map((proxy) => () => proxy.stop()))),
        ...(await settleAll(started.registry ? [() => started.registry!.stop()] : [])),
      ];
      if (errors.length > 0) throw new AggregateError(errors, 'startCluster: stop failed');
    })();
    return stopped;
  };

  try {
    const registry = await startRegistry({ dir: join(options.dir, 'registry'), host: registryHost });
    started.registry = registry;
    const { perNode, ...throttle } = options.throttle ?? {};
    const proxyFor = async (
      listenHost: string,
      limitScope: ThrottleProxyOptions['limitScope'],
    ): Promise<Endpoint> => {
      const proxy = await startThrottleProxy({
        target: registry.hostPort,
        listenHost,
        ...throttle,
        ...(limitScope ? { limitScope } : {}),
      });
      started.proxies.push(proxy);
      return { url: proxy.url, hostPort: proxy.hostPort };
    };
    const shared =
      options.throttle && !perNode ? await proxyFor(registryHost, throttle.limitScope) : undefined;
    const upstream: Endpoint = shared ?? { url: registry.url, hostPort: registry.hostPort };
    const nodeUpstreams: Endpoint[] = [];
    for (let i = 0; i < options.nodes; i++) {
      nodeUpstreams.push(perNode ? await proxyFor(hosts[i]!, throttle.limitScope ?? 'proxy') : upstream);
    }
    const settled = await Promise.allSettled(
      Array.from({ length: options.nodes }, (_, i) =>
        startContainerd({
          dir: options.dir,
          name: `node${i + 1}`,
          host: hosts[i]!,
          snapshotter: options.snapshotter ?? 'overlayfs',
          ...options.containerd?.(i),
        }),
      ),
    );
    const nodes: ClusterNode[] = [];
    for (const [i, result] of settled.entries()) {
      if (result.status === 'fulfilled') {
        started.nodes.push(result.value);
        nodes.push({ ...result.value, host: hosts[i]!, upstream: nodeUpstreams[i]! });
      }
    }
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    for (const node of nodes) {
      for (const host of options.upstreamFor ?? []) {
        await writeHostsToml(node.registryConfigPath, host, upstreamHostsToml(node.upstream.url));
      }
    }
    return {
      registry,
      ...(shared ? { proxy: started.proxies[0]! } : {}),
      proxies: started.proxies,
      upstream,
      nodes,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
