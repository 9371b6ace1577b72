// A whole test cluster in one call: one upstream registry (optionally behind a throttle proxy so
// it behaves like a remote one) and N containerd nodes, each with its own loopback address.
// It knows nothing about the Peili daemon: tests start that themselves against `nodes[i]`.
import { join } from 'node:path';
import { startContainerd, type ContainerdNode, type Snapshotter } from './containerd.js';
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
  /** Put a throttle proxy in front of the registry (e.g. `{ bytesPerSecond: 12_500_000, latencyMs: 10 }`). */
  readonly throttle?: Pick<ThrottleProxyOptions, 'bytesPerSecond' | 'latencyMs' | 'limitScope'>;
  /**
   * Registry hosts (e.g. `docker.io`, `ghcr.io`) that every node resolves against the upstream
   * (registry or proxy) through a hosts.toml; default none.
   */
  readonly upstreamFor?: readonly string[];
}

/** A node of the cluster: a containerd daemon plus its loopback address. */
export type ClusterNode = ContainerdNode & { readonly host: string };

/** A running cluster. */
export interface Cluster {
  readonly registry: RegistryProcess;
  /** The throttle proxy, when `throttle` was given. */
  readonly proxy?: ThrottleProxy;
  /** What nodes should pull from: the proxy when there is one, else the registry. */
  readonly upstream: { readonly url: string; readonly hostPort: string };
  readonly nodes: ClusterNode[];
  /** Stops every node, the proxy and the registry; safe to call twice. */
  stop(): Promise<void>;
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
  const stoppers: (() => Promise<void>)[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // Nodes first (they may be mid-pull from the registry), then the proxy and the registry.
      const results = await Promise.allSettled(stoppers.reverse().map((fn) => fn()));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) throw new AggregateError(failed.map((f) => f.reason as unknown), 'startCluster: stop failed');
    })();
    return stopped;
  };

  try {
    const registry = await startRegistry({ dir: join(options.dir, 'registry'), host: options.registryHost ?? '127.0.0.1' });
    stoppers.push(() => registry.stop());
    let proxy: ThrottleProxy | undefined;
    if (options.throttle) {
      proxy = await startThrottleProxy({
        target: registry.hostPort,
        listenHost: options.registryHost ?? '127.0.0.1',
        ...options.throttle,
      });
      const started = proxy;
      stoppers.push(() => started.stop());
    }
    const upstream = proxy ? { url: proxy.url, hostPort: proxy.hostPort } : { url: registry.url, hostPort: registry.hostPort };
    const settled = await Promise.allSettled(
      Array.from({ length: options.nodes }, (_, i) =>
        startContainerd({ dir: options.dir, name: `node${i + 1}`, host: hosts[i]!, snapshotter: options.snapshotter ?? 'overlayfs' }),
      ),
    );
    const nodes: ClusterNode[] = [];
    for (const [i, result] of settled.entries()) {
      if (result.status === 'fulfilled') {
        stoppers.push(() => result.value.stop());
        nodes.push({ ...result.value, host: hosts[i]! });
      }
    }
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    for (const node of nodes) {
      for (const registryHost of options.upstreamFor ?? []) {
        await writeHostsToml(node.registryConfigPath, registryHost, upstreamHostsToml(upstream.url));
      }
    }
    return { registry, ...(proxy ? { proxy } : {}), upstream, nodes, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
