// Health of the rollout, read once Flux (or Helm) reports the release ready: the DaemonSet's
// counts, and each node's own report from its daemon (node-reports.ts). "healthy" means every
// node serves peers: its pod is ready, containerd sends it requests and keeps layers.
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { inheritedDependsOn } from './component-options.js';
import type { NodeHealth } from './node-reports.js';

/** One word for dashboards. */
export type HealthStatus =
  'healthy' | 'not-serving' | 'progressing' | 'degraded' | 'down' | 'empty' | 'unknown';

/** The DaemonSet part of the health output. */
export interface DaemonSetReport {
  /** Nodes that should run a daemon (`desiredNumberScheduled`). */
  readonly desired: number;
  /** Nodes whose daemon is ready (`numberReady`). */
  readonly ready: number;
  /** Nodes running the current pod template (`updatedNumberScheduled`). */
  readonly updated: number;
  /** Summary word. */
  readonly status: HealthStatus;
}

/** The DaemonSet status fields the report reads. */
export interface DaemonSetCounts {
  readonly desiredNumberScheduled?: number;
  readonly numberReady?: number;
  readonly updatedNumberScheduled?: number;
}

/** The health stack output. */
export interface MirrorHealthReport extends DaemonSetReport {
  /**
   * Each node's report, by node name; a string when the nodes could not be read (e.g. in a
   * preview, or `render`, which has no cluster).
   */
  readonly nodes: Readonly<Record<string, NodeHealth>> | string;
}

/**
 * The whole report: `healthy` only when the DaemonSet is complete and every node it runs on
 * reports `serving`; `not-serving` when the DaemonSet is complete but some node is not (or could
 * not be asked). Without node reports the DaemonSet cannot prove more than `unknown`.
 */
export function combineHealth(
  ds: DaemonSetReport,
  nodes: Readonly<Record<string, NodeHealth>> | string,
): MirrorHealthReport {
  if (ds.status !== 'healthy') return { ...ds, nodes };
  if (typeof nodes === 'string') return { ...ds, status: 'unknown', nodes };
  const all = Object.values(nodes);
  const serving = all.length >= ds.desired && all.every((n) => n.status === 'serving');
  return { ...ds, status: serving ? 'healthy' : 'not-serving', nodes };
}

/** Summarises a DaemonSet status: complete only when every desired node is ready and updated. */
export function daemonSetHealth(status: DaemonSetCounts | undefined): DaemonSetReport {
  if (!status || status.desiredNumberScheduled === undefined)
    return { desired: 0, ready: 0, updated: 0, status: 'unknown' };
  const desired = status.desiredNumberScheduled;
  const ready = status.numberReady ?? 0;
  const updated = status.updatedNumberScheduled ?? 0;
  let word: HealthStatus;
  if (desired === 0) word = 'empty';
  else if (ready >= desired && updated >= desired) word = 'healthy';
  else if (ready === 0) word = 'down';
  else if (updated < desired) word = 'progressing';
  else word = 'degraded';
  return { desired, ready, updated, status: word };
}

/** Arguments of `MirrorHealth`. */
export interface MirrorHealthArgs {
  /** Namespace of the DaemonSet. */
  readonly namespace: string;
  /** DaemonSet name (the release's fullname). */
  readonly daemonSetName: string;
  /** The resource whose readiness means the rollout is over (HelmRelease, Kustomization, Release). */
  readonly rollout: pulumi.CustomResource;
  /** Reads every node's report (during `up` only). @default none: nodes reads 'not read' */
  readonly readNodes?: () => Promise<Record<string, NodeHealth>>;
  /** Anything else to wait for before reading the nodes (e.g. the rolling reboot). */
  readonly after?: pulumi.Input<unknown>;
}

/** Reads the DaemonSet after the rollout and reports its health. */
export class MirrorHealth extends pulumi.ComponentResource {
  /** The health report. */
  public readonly report: pulumi.Output<MirrorHealthReport>;

  constructor(name: string, args: MirrorHealthArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:health:MirrorHealth', name, {}, opts);
    // The id is derived from the rollout's id: during a preview that creates the rollout the id is
    // unknown, so the read is skipped instead of failing on a DaemonSet that does not exist yet.
    const id = args.rollout.id.apply(() => `${args.namespace}/${args.daemonSetName}`);
    const daemonSet = k8s.apps.v1.DaemonSet.get(`${name}-daemonset`, id, {
      parent: this,
      dependsOn: [...inheritedDependsOn(opts), args.rollout],
    });
    const read = args.readNodes;
    const nodes = pulumi
      .all([daemonSet.status, args.after])
      .apply(async (): Promise<Record<string, NodeHealth> | string> => {
        if (!read) return 'not read';
        if (pulumi.runtime.isDryRun()) return 'read during pulumi up';
        try {
          return await read();
        } catch (error) {
          return `could not be read: ${error instanceof Error ? error.message : String(error)}`;
        }
      });
    this.report = pulumi
      .all([daemonSet.status, nodes])
      .apply(([s, n]) => combineHealth(daemonSetHealth(s), n));
    this.registerOutputs({ report: this.report });
  }
}
