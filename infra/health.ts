// Health of the rollout, read from the DaemonSet once Flux (or Helm) reports the release ready.
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { inheritedDependsOn } from './component-options.js';

/** One word for dashboards. */
export type HealthStatus = 'healthy' | 'progressing' | 'degraded' | 'down' | 'empty' | 'unknown';

/** The health stack output. */
export interface MirrorHealthReport {
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

/** Summarises a DaemonSet status: healthy only when every desired node is ready and updated. */
export function daemonSetHealth(status: DaemonSetCounts | undefined): MirrorHealthReport {
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
    this.report = daemonSet.status.apply((s) => daemonSetHealth(s));
    this.registerOutputs({ report: this.report });
  }
}
