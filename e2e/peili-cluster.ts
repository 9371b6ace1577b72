// A test-bed cluster with the real `peili` executable on every node: containerd nodes from
// `testbed/`, hosts.toml written by `peili configure`, and `peili registry` daemons that find each
// other through a static member list. Used by the end-to-end tests, the demo and the benchmarks.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  REPO_ROOT,
  startCluster,
  startProcess,
  waitFor,
  type Cluster,
  type ClusterNode,
  type ClusterOptions,
  type ManagedProcess,
} from '../testbed/index.js';
import { daemonNode } from '../testbed/daemon-node.js';

/** Ports every daemon listens on, each on its node's own loopback address. */
export const PEILI_PORTS = Object.freeze({ registry: 5000, router: 5001, metrics: 9090 });

const CLI = join(REPO_ROOT, 'mirror', 'src', 'cli.ts');

/** Options of {@link startPeiliCluster}. */
export interface PeiliClusterOptions extends Omit<ClusterOptions, 'upstreamFor'> {
  /** Extra `peili registry` flags for every node (e.g. `--resolve-tags=always`). */
  readonly registryArgs?: readonly string[];
  /** Extra `peili registry` flags of one node (by index), after `registryArgs` (e.g. its own certificate). */
  readonly nodeArgs?: (index: number) => readonly string[];
  /** Shared secret for peer authentication; none when omitted. */
  readonly peerSecret?: string;
  /** The daemons' log level. @default 'debug' (tests read the logs) */
  readonly logLevel?: string;
  /** Node.js flags for the daemons (e.g. `--cpu-prof`). */
  readonly nodeFlags?: readonly string[];
  /** A compiled `cli.js` to run instead of the TypeScript sources under tsx. */
  readonly compiledCli?: string;
  /** Nodes whose daemon is not started at first (start it later with `startDaemon`). */
  readonly deferred?: readonly number[];
  /** More `host:routerPort` members added to every daemon's static list (e.g. a fake, silent peer). */
  readonly extraMembers?: readonly string[];
}

/** One node: its containerd, and the Peili daemon beside it. */
export interface PeiliNode {
  readonly node: ClusterNode;
  /** `http://<host>:5000`: the mirror endpoint written into this node's hosts.toml. */
  readonly mirrorUrl: string;
  readonly metricsUrl: string;
  readonly logPath: string;
  /** The running daemon, or undefined while stopped. */
  daemon(): ManagedProcess | undefined;
  startDaemon(): Promise<void>;
  stopDaemon(): Promise<void>;
  /** SIGKILLs the daemon (no graceful shutdown, in-flight streams break) and waits until it is gone. */
  killDaemon(): Promise<void>;
  /** Parsed Prometheus samples of this node's `/metrics` (name{labels} → value). */
  metrics(): Promise<Map<string, number>>;
}

/** A running cluster of containerd nodes with Peili. */
export interface PeiliCluster {
  readonly cluster: Cluster;
  readonly nodes: PeiliNode[];
  /** The registry host every image name uses (`ns`), i.e. the upstream as containerd sees it. */
  readonly upstreamHost: string;
  stop(): Promise<void>;
}

/** What {@link registryCommand} needs to start one node's daemon. */
export interface RegistryCommandOptions {
  readonly node: Pick<ClusterNode, 'host' | 'socket' | 'contentPath'>;
  /** Static member list `host:routerPort,…`. */
  readonly members: string;
  /** Registry mirrored (the upstream's `host:port`). */
  readonly upstreamHost: string;
  readonly logLevel: string;
  readonly secretFile?: string;
  /** Flags that replace the defaults of the same name, or add to them. */
  readonly registryArgs?: readonly string[];
  /** Node.js flags (e.g. `--cpu-prof`); `PEILI_E2E_NODE_FLAGS` adds more. */
  readonly nodeFlags?: readonly string[];
  /** A compiled `cli.js` to run instead of the TypeScript sources under tsx. */
  readonly compiledCli?: string;
}

/** The argv (after the node binary) of `peili registry` on a test-bed node. */
export function registryCommand(options: RegistryCommandOptions): string[] {
  const { node } = options;
  const flags = new Map<string, string>([
    ['containerd-sock', node.socket],
    ['containerd-content-path', node.contentPath],
    ['registry-addr', `${node.host}:${PEILI_PORTS.registry}`],
    ['router-addr', `${node.host}:${PEILI_PORTS.router}`],
    ['metrics-addr', `${node.host}:${PEILI_PORTS.metrics}`],
    ['advertise-host', node.host],
    ['members', options.members],
    ['mirrored-registries', options.upstreamHost],
    ['members-refresh', '1s'],
    ['log-level', options.logLevel],
  ]);
  if (options.secretFile !== undefined) flags.set('peer-secret-file', options.secretFile);
  for (const arg of options.registryArgs ?? []) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`registryArgs: expected --name=value, got ${JSON.stringify(arg)}`);
    flags.set(match[1]!, match[2] ?? 'true');
  }
  return [
    ...(options.nodeFlags ?? []),
    ...(process.env.PEILI_E2E_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
    ...(options.compiledCli ? [options.compiledCli] : ['--import', 'tsx', CLI]),
    'registry',
    ...[...flags].map(([name, value]) => `--${name}=${value}`),
  ];
}

/** Runs `peili <args>` to completion; rejects with its output when it exits non-zero. */
export async function runPeili(args: readonly string[], logPath: string): Promise<void> {
  const child = await startProcess(daemonNode().path, ['--import', 'tsx', CLI, ...args], {
    logPath,
    cwd: REPO_ROOT,
  });
  const status = await child.exited;
  if (status.code !== 0)
    throw new Error(`peili ${args.join(' ')} exited with ${JSON.stringify(status)}; see ${logPath}`);
}

/** Parses the Prometheus text format into `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

/** Sums every sample of `name` whose labels include all of `labels`. */
export function sumMetric(
  samples: Map<string, number>,
  name: string,
  labels: Record<string, string> = {},
): number {
  let total = 0;
  for (const [key, value] of samples) {
    const brace = key.indexOf('{');
    if ((brace === -1 ? key : key.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
  }
  return total;
}

/** Starts the cluster, configures every node's containerd for Peili and starts the daemons. */
export async function startPeiliCluster(options: PeiliClusterOptions): Promise<PeiliCluster> {
  const cluster = await startCluster(options);
  const nodes: PeiliNode[] = [];
  try {
    const upstreamHost = cluster.upstream.hostPort;
    const members = [
      ...cluster.nodes.map((node) => `${node.host}:${PEILI_PORTS.router}`),
      ...(options.extraMembers ?? []),
    ].join(',');
    let secretFile: string | undefined;
    if (options.peerSecret !== undefined) {
      secretFile = join(options.dir, 'peer-secret');
      await writeFile(secretFile, options.peerSecret, { mode: 0o600 });
    }
    for (const [i, node] of cluster.nodes.entries()) {
      const mirrorUrl = `http://${node.host}:${PEILI_PORTS.registry}`;
      const metricsUrl = `http://${node.host}:${PEILI_PORTS.metrics}`;
      const logPath = join(options.dir, `peili-${node.name}.log`);
      await runPeili(
        [
          'configure',
          `--config-path=${node.registryConfigPath}`,
          `--mirror-targets=${mirrorUrl}`,
          `--mirrored-registries=${upstreamHost}`,
          `--containerd-sock=${node.socket}`,
        ],
        logPath,
      );
      let daemon: ManagedProcess | undefined;
      const peiliNode: PeiliNode = {
        node,
        mirrorUrl,
        metricsUrl,
        logPath,
        daemon: () => daemon,
        async startDaemon() {
          if (daemon?.running()) return;
          daemon = await startProcess(
            daemonNode().path,
            registryCommand({
              node,
              members,
              upstreamHost,
              logLevel: options.logLevel ?? 'debug',
              ...(secretFile ? { secretFile } : {}),
              registryArgs: [...(options.registryArgs ?? []), ...(options.nodeArgs?.(i) ?? [])],
              ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
              ...(options.compiledCli ? { compiledCli: options.compiledCli } : {}),
            }),
            { logPath, cwd: REPO_ROOT },
          );
          const started = daemon;
          await waitFor(
            async () => {
              if (!started.running()) throw new Error(`peili on ${node.name} exited; see ${logPath}`);
              const response = await fetch(`${metricsUrl}/readyz`).catch(() => undefined);
              return response?.status === 200;
            },
            {
              timeoutMs: 30_000,
              intervalMs: 100,
              describe: () => `peili on ${node.name} ready (log ${logPath})`,
            },
          );
        },
        async stopDaemon() {
          await daemon?.stop({ timeoutMs: 15_000 });
          daemon = undefined;
        },
        async killDaemon() {
          const running = daemon;
          daemon = undefined;
          if (!running?.running()) return;
          process.kill(running.pid, 'SIGKILL');
          await running.exited;
        },
        async metrics() {
          const response = await fetch(`${metricsUrl}/metrics`);
          return parseMetrics(await response.text());
        },
      };
      nodes.push(peiliNode);
      if (!(options.deferred ?? []).includes(i)) await peiliNode.startDaemon();
    }
    return {
      cluster,
      nodes,
      upstreamHost,
      async stop() {
        await Promise.allSettled(nodes.map((node) => node.stopDaemon()));
        await cluster.stop();
      },
    };
  } catch (error) {
    await Promise.allSettled(nodes.map((node) => node.stopDaemon()));
    await cluster.stop().catch(() => undefined);
    throw error;
  }
}

/**
 * Polls `node`'s registry API (as its local containerd would ask it) until every digest of
 * `repository` (or tag, with `kind: 'manifests'`) answers `HEAD` 200: the node's daemon found it
 * locally or at a peer, so the peers' advertisements have arrived. Throws after `timeoutMs`.
 */
export async function waitUntilServed(
  node: PeiliNode,
  options: {
    ns: string;
    repository: string;
    digests: readonly string[];
    kind?: 'blobs' | 'manifests';
    timeoutMs?: number;
  },
): Promise<void> {
  const pending = new Set(options.digests);
  await waitFor(
    async () => {
      for (const digest of [...pending]) {
        const url = `${node.mirrorUrl}/v2/${options.repository}/${options.kind ?? 'blobs'}/${digest}?ns=${encodeURIComponent(options.ns)}`;
        const response = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(5_000) }).catch(
          () => undefined,
        );
        if (response?.status === 200) pending.delete(digest);
      }
      return pending.size === 0;
    },
    {
      timeoutMs: options.timeoutMs ?? 30_000,
      intervalMs: 200,
      describe: () => `${node.node.name} never found ${[...pending].join(', ')} of ${options.repository}`,
    },
  );
}
