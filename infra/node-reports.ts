// Per-node truth for the stack's `health` output: each daemon's own report about its node (is
// containerd sending it requests, does containerd keep layers, which runtime), read through the
// apiserver's pod proxy (`/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/readyz?verbose`), plus
// the pod's Ready condition and host IP from the pod list. The pod proxy needs no extra RBAC in
// the daemon and works with any real apiserver; a pod that only exists on paper (kwok) or a
// daemon too old to answer is reported as `unreachable`, never assumed healthy.
import { KubeApiError, type KubeApi } from './kube-api.js';
import { nodeRegistryEndpoint } from './mirror-values.js';

/** What a daemon says about its node (mirror/src/node-check, `/readyz?verbose`). */
export interface DaemonNodeReport {
  readonly mirror: 'configured' | 'not-configured' | 'unknown';
  readonly layers: 'kept' | 'discarded' | 'unknown';
  readonly runtime: string;
}

/** One node in the `health` output. */
export interface NodeHealth {
  /** The daemon pod on the node. */
  readonly pod: string;
  /** The pod's Ready condition. */
  readonly ready: boolean;
  /** The registry endpoint containerd on that node is pointed at. */
  readonly endpoint: string;
  /** The daemon's report, or `unreachable` when it could not be read. */
  readonly report: DaemonNodeReport | 'unreachable';
  /** `serving` only when the pod is ready, containerd asks the mirror and keeps layers. */
  readonly status:
    'serving' | 'not-configured' | 'discarding-layers' | 'not-ready' | 'checking' | 'unreachable';
}

/** Parses a daemon's `/readyz?verbose` body; undefined when it is not a node report. */
export function parseDaemonReport(body: string): DaemonNodeReport | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  const node = (doc as { node?: Record<string, unknown> } | null)?.node;
  if (!node) return undefined;
  const mirror = node.mirror;
  const layers = node.layers;
  if (mirror !== 'configured' && mirror !== 'not-configured' && mirror !== 'unknown') return undefined;
  if (layers !== 'kept' && layers !== 'discarded' && layers !== 'unknown') return undefined;
  return { mirror, layers, runtime: typeof node.runtime === 'string' ? node.runtime : 'unknown' };
}

/** The status word of one node. */
export function nodeStatus(ready: boolean, report: DaemonNodeReport | 'unreachable'): NodeHealth['status'] {
  if (!ready) return 'not-ready';
  if (report === 'unreachable') return 'unreachable';
  if (report.mirror === 'not-configured') return 'not-configured';
  if (report.layers === 'discarded') return 'discarding-layers';
  if (report.mirror === 'configured' && report.layers === 'kept') return 'serving';
  return 'checking';
}

interface PodList {
  items: {
    metadata: { name: string };
    spec: { nodeName?: string };
    status: { hostIP?: string; conditions?: { type: string; status: string }[] };
  }[];
}

/** Where the daemons are and how to reach them. */
export interface DaemonPods {
  readonly namespace: string;
  /** Label selector of the daemon pods, e.g. `app.kubernetes.io/instance=peili`. */
  readonly selector: string;
  /** Container port of `/readyz` (chart value `service.metrics.port`). */
  readonly metricsPort: number;
  /** hostPort of the registry API (for the hosts.toml endpoint). */
  readonly hostPort: number;
  /** Endpoint Talos's registry config uses on every node; absent when the pods write hosts.toml. */
  readonly talosEndpoint?: string;
}

/** Reads every daemon's node report, by node name. */
export async function readNodeHealth(
  api: KubeApi,
  pods: DaemonPods,
  signal?: AbortSignal,
): Promise<Record<string, NodeHealth>> {
  const ns = encodeURIComponent(pods.namespace);
  const list = JSON.parse(
    await api.get(`/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(pods.selector)}`, signal),
  ) as PodList;
  const out: Record<string, NodeHealth> = {};
  await Promise.all(
    list.items.map(async (pod) => {
      const nodeName = pod.spec.nodeName;
      if (!nodeName) return;
      const ready = pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      let report: DaemonNodeReport | 'unreachable' = 'unreachable';
      try {
        const body = await api.get(
          `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(pod.metadata.name)}:${pods.metricsPort}/proxy/readyz?verbose`,
          signal,
        );
        report = parseDaemonReport(body) ?? 'unreachable';
      } catch (error) {
        // 503 = the daemon is not ready; its body still carries the report.
        if (error instanceof KubeApiError) report = parseDaemonReport(error.body) ?? 'unreachable';
      }
      out[nodeName] = {
        pod: pod.metadata.name,
        ready,
        endpoint: pods.talosEndpoint ?? nodeRegistryEndpoint(pod.status.hostIP ?? 'unknown', pods.hostPort),
        report,
        status: nodeStatus(ready, report),
      };
    }),
  );
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** A node's boot id and Ready condition (for the rolling reboot). */
export interface NodeState {
  readonly bootId: string;
  readonly ready: boolean;
}

/** Reads a Kubernetes node's boot id and Ready condition. */
export async function readNodeState(
  api: KubeApi,
  nodeName: string,
  signal?: AbortSignal,
): Promise<NodeState> {
  const node = JSON.parse(await api.get(`/api/v1/nodes/${encodeURIComponent(nodeName)}`, signal)) as {
    status?: { nodeInfo?: { bootID?: string }; conditions?: { type: string; status: string }[] };
  };
  return {
    bootId: node.status?.nodeInfo?.bootID ?? '',
    ready: node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
  };
}

/** Options of `waitForRebootedNode`. */
export interface RebootWaitOptions {
  readonly nodeName: string;
  /** Boot id before the reboot was asked for. */
  readonly bootIdBefore: string;
  readonly pods: DaemonPods;
  readonly timeoutMs: number;
  /** Poll interval. @default 5000 */
  readonly intervalMs?: number;
  /** Waits `ms` (injected so tests need no real time). @default setTimeout */
  readonly delay?: (ms: number) => Promise<void>;
  /** Milliseconds since some fixed point (injected with `delay`). @default Date.now */
  readonly now?: () => number;
}

/**
 * Waits until a node has rebooted (its boot id changed), Kubernetes reports it Ready (kubelet
 * only reports Ready once Talos has its services up) and its daemon reports layers kept. Throws
 * naming the node and the last thing seen when `timeoutMs` passes: the rolling reboot then stops
 * before touching the next node.
 */
export async function waitForRebootedNode(api: KubeApi, o: RebootWaitOptions): Promise<NodeHealth> {
  const delay = o.delay ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = o.now ?? Date.now;
  const deadline = now() + o.timeoutMs;
  let last = 'not read yet';
  for (;;) {
    try {
      const state = await readNodeState(api, o.nodeName);
      if (state.bootId === o.bootIdBefore) last = 'the node has not rebooted yet';
      else if (!state.ready) last = 'the node rebooted but is not Ready';
      else {
        const health = (await readNodeHealth(api, o.pods))[o.nodeName];
        if (!health) last = 'no daemon pod on the node yet';
        else if (health.status === 'serving') return health;
        else
          last =
            health.report === 'unreachable'
              ? `its daemon (${health.pod}) does not answer`
              : `its daemon reports mirror ${health.report.mirror}, layers ${health.report.layers}`;
      }
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (now() >= deadline)
      throw new Error(
        `rolling reboot stopped at node ${o.nodeName}: ${last} after ${Math.round(o.timeoutMs / 1000)} s ` +
          '(layers show as kept once an image is pulled on the node after its reboot; see docs/deploy-pulumi.md)',
      );
    await delay(o.intervalMs ?? 5_000);
  }
}
