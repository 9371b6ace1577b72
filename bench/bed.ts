// The benchmarks' test bed: three containerd nodes with real `peili registry` daemons, a real
// docker-registry as the upstream, and each node's link to it throttled like a remote registry.
// Each node's hosts.toml is switched between "upstream only" (the baseline), "Peili first" and
// "registry direct" (seeding without the throttle), which containerd re-reads at every pull.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import {
  PEILI_PORTS,
  registryCommand,
  startPeiliCluster,
  type PeiliCluster,
  type PeiliNode,
} from '../e2e/peili-cluster.js';
import {
  createCriClient,
  REPO_ROOT,
  startProcess,
  type ManagedProcess,
  pushImage,
  upstreamHostsToml,
  waitFor,
  writeHostsToml,
  type ClusterNode,
  type OciLayout,
} from '../testbed/index.js';
import { residentBytes } from './measure.js';
import { median } from './stats.js';
import { daemonNode } from '../testbed/daemon-node.js';

/** The loopback addresses of the bed (inside this engineer's 127.0.30.0/24). */
export const BED_HOSTS = Object.freeze({
  registry: '127.0.30.1',
  nodes: ['127.0.30.2', '127.0.30.3', '127.0.30.4'],
});

/** The link every node has to the upstream: 100 Mbit/s, 20 ms round trip. */
export const REMOTE_LINK = Object.freeze({ bytesPerSecond: 12_500_000, latencyMs: 10 });

/** How a node reaches the upstream registry for the next pull. */
export type Route = 'upstream' | 'peili' | 'direct';

/** An image pushed to the bed's registry. */
export interface PushedImage {
  readonly layout: OciLayout;
  /** Repository inside the registry, e.g. `bench/pull-100m`. */
  readonly repository: string;
  /** The full reference containerd pulls: `<registry host:port>/<repository>:v1`. */
  readonly ref: string;
}

/** The running bed. */
export interface Bed {
  readonly peili: PeiliCluster;
  readonly nodes: readonly PeiliNode[];
  /** `host:port` of the registry: the `ns` of every request and the host of every image name. */
  readonly registryHost: string;
  readonly registryUrl: string;
  /** Writes node `i`'s hosts.toml for `route`. */
  route(i: number, route: Route): Promise<void>;
  /** Pushes `layout` (unthrottled) as `<repository>:v1`. */
  push(layout: OciLayout, repository: string): Promise<PushedImage>;
  /** CRI PullImage on node `i`; resolves to the wall time in seconds. */
  pull(i: number, ref: string, timeoutMs?: number): Promise<number>;
  /** Removes every image naming `image` from node `i` and waits until its blobs are gone. */
  remove(i: number, image: PushedImage): Promise<void>;
  /** Waits until node `i`'s mirror finds every blob of `image` at a peer (HEAD 200). */
  waitAdvertised(i: number, image: PushedImage, timeoutMs?: number): Promise<void>;
  /** Each daemon's resident memory right after start, before any traffic (median of 5 samples). */
  readonly idleResident: readonly number[];
  /** The path of a blob in node `i`'s containerd content store. */
  blobPath(i: number, digest: string): string;
  /** `<mirror>/v2/<repository>/blobs/<digest>?ns=<registry>` on node `i`. */
  blobUrl(i: number, image: PushedImage, digest: string): string;
  stop(): Promise<void>;
}

/** Options of {@link startBed}. */
export interface BedOptions {
  readonly dir: string;
  /** Extra `peili registry` flags. */
  readonly registryArgs?: readonly string[];
  /** Node.js flags for the daemons (e.g. `--cpu-prof`). */
  readonly nodeFlags?: readonly string[];
  /** A compiled `cli.js` to run; the TypeScript sources under tsx when omitted. */
  readonly compiledCli?: string;
}

/** Starts the three-node bed with Peili on every node. */
export async function startBed(options: BedOptions): Promise<Bed> {
  // The harness runs `peili configure` on every node; the daemons are started here instead of
  // by the harness, whose daemons log at debug level (a cost on every request).
  const peili = await startPeiliCluster({
    nodes: BED_HOSTS.nodes.length,
    dir: options.dir,
    registryHost: BED_HOSTS.registry,
    nodeHosts: BED_HOSTS.nodes,
    // Each node has its own link: a proxy on the node's address, its rate shared by all of the
    // node's connections (containerd fetches up to 3 layers at once over that one link).
    throttle: { ...REMOTE_LINK, perNode: true },
    deferred: BED_HOSTS.nodes.map((_, i) => i),
  });
  const daemons: ManagedProcess[] = [];
  const members = BED_HOSTS.nodes.map((host) => `${host}:${PEILI_PORTS.router}`).join(',');
  try {
    for (const peiliNode of peili.nodes) {
      const { node } = peiliNode;
      const daemon = await startProcess(
        daemonNode().path,
        registryCommand({
          node,
          members,
          upstreamHost: peili.upstreamHost,
          logLevel: 'warn',
          ...(options.registryArgs ? { registryArgs: options.registryArgs } : {}),
          ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
          ...(options.compiledCli ? { compiledCli: options.compiledCli } : {}),
        }),
        { logPath: peiliNode.logPath, cwd: REPO_ROOT },
      );
      daemons.push(daemon);
    }
    for (const [i, peiliNode] of peili.nodes.entries()) {
      await waitFor(
        async () => {
          if (!daemons[i]!.running())
            throw new Error(`peili on node ${i + 1} exited; see ${peiliNode.logPath}`);
          const response = await fetch(`${peiliNode.metricsUrl}/readyz`).catch(() => undefined);
          return response?.status === 200;
        },
        {
          timeoutMs: 60_000,
          intervalMs: 100,
          describe: () => `peili on node ${i + 1} ready (${peiliNode.logPath})`,
        },
      );
    }
  } catch (error) {
    await Promise.allSettled(daemons.map((d) => d.stop({ timeoutMs: 15_000 })));
    await peili.stop().catch(() => undefined);
    throw error;
  }
  // Idle memory before any request: settled after start-up, sampled a few times.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const idleResident: number[] = [];
  for (const peiliNode of peili.nodes) {
    const samples: number[] = [];
    for (let k = 0; k < 5; k++) {
      samples.push(await residentBytes(peiliNode.metricsUrl));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    idleResident.push(median(samples));
  }
  const registryHost = peili.upstreamHost;
  const registryUrl = peili.cluster.registry.url;
  const nodes = peili.nodes;
  const node = (i: number): ClusterNode => nodes[i]!.node;

  const bed: Bed = {
    peili,
    nodes,
    registryHost,
    registryUrl,
    idleResident,
    async route(i, route) {
      const target = node(i);
      const server = route === 'direct' ? registryUrl : target.upstream.url;
      const mirrors = route === 'peili' ? [{ url: nodes[i]!.mirrorUrl }] : [];
      await writeHostsToml(target.registryConfigPath, registryHost, upstreamHostsToml(server, mirrors));
    },
    async push(layout, repository) {
      const ref = `${registryHost}/${repository}:v1`;
      await pushImage(layout, ref);
      return { layout, repository, ref };
    },
    async pull(i, ref, timeoutMs = 600_000) {
      const cri = createCriClient(node(i).socket, { timeoutMs });
      try {
        const started = performance.now();
        await cri.pullImage(ref);
        return (performance.now() - started) / 1000;
      } finally {
        cri.close();
      }
    },
    async remove(i, image) {
      const target = node(i);
      const { stdout } = await target.ctr(['images', 'ls', '-q']);
      const config = image.layout.images[0]!.configDigest;
      const names = stdout
        .split('\n')
        .map((line) => line.trim())
        .filter((name) => name.startsWith(`${registryHost}/${image.repository}`) || name === config);
      if (names.length > 0) await target.ctr(['images', 'rm', '--sync', ...names]);
      const layers = image.layout.images[0]!.layerDigests;
      await waitFor(
        async () => {
          for (const digest of layers) {
            if (await exists(bed.blobPath(i, digest))) return false;
          }
          return true;
        },
        {
          timeoutMs: 30_000,
          intervalMs: 200,
          describe: () => `blobs of ${image.ref} removed from node ${i + 1}`,
        },
      );
    },
    async waitAdvertised(i, image, timeoutMs = 30_000) {
      const digests = [image.layout.images[0]!.configDigest, ...image.layout.images[0]!.layerDigests];
      await waitFor(
        async () => {
          for (const digest of digests) {
            const response = await fetch(bed.blobUrl(i, image, digest), { method: 'HEAD' }).catch(
              () => undefined,
            );
            if (response?.status !== 200) return false;
          }
          return true;
        },
        {
          timeoutMs,
          intervalMs: 200,
          describe: () => `node ${i + 1} finds every blob of ${image.ref} at a peer`,
        },
      );
    },
    blobPath(i, digest) {
      return join(node(i).contentPath, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
    },
    blobUrl(i, image, digest) {
      return `${nodes[i]!.mirrorUrl}/v2/${image.repository}/blobs/${digest}?ns=${encodeURIComponent(registryHost)}`;
    },
    async stop() {
      await Promise.allSettled(daemons.map((d) => d.stop({ timeoutMs: 15_000 })));
      await peili.stop();
    },
  };
  for (let i = 0; i < nodes.length; i++) await bed.route(i, 'peili');
  return bed;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
