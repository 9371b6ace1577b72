// Applies Peili's Talos parts (talos-patch.ts) to Pulumi-owned nodes. Each node's configuration is
// generated from the stack config alone (cluster secrets, versions, install image and disk, the
// user's patches); Peili's parts go on top as apply-time patches, so a node's configuration with
// and without Peili differs only in them (talos-apply.test.ts renders both).
//  - registries: `no_reboot`, before the chart (containerd asks the mirror at once);
//  - keep layers, Talos ≥ 1.14 or `keepLayers: applied`: in the same `no_reboot` apply;
//  - keep layers, Talos < 1.14: `staged` (taken at the node's next reboot), or with
//    `keepLayers: rolling-reboot` in `reboot` mode one node at a time after the chart is up, each
//    node waited for until it is back, Ready, and its daemon reports layers kept.
import * as pulumi from '@pulumi/pulumi';
import { inheritedDependsOn } from './component-options.js';
import type { TalosConfig, TalosGeneration, TalosNode } from './config.js';
import { installPatch, type PeiliTalosPatches } from './talos-patch.js';
import * as talos from './talos/index.js';

/** What happens to a node's keep-layers part in this run. */
export type KeepLayersState = 'applied' | 'pending reboot' | 'rolling reboot';

/** One apply of a node's whole configuration. */
export interface ApplyStep {
  /** Suffix of the resource name: `registries`, `keep-layers` or `config`. */
  readonly name: 'registries' | 'keep-layers' | 'config';
  /** Peili's patches applied on top of the generated configuration. */
  readonly patches: readonly string[];
  readonly mode: talos.ApplyMode;
}

/** How one node is configured: generation inputs (the user's) and Peili's apply steps. */
export interface NodePlan {
  readonly node: TalosNode;
  /** Inputs of the provider's config generation, from the stack config only. */
  readonly generate: {
    readonly clusterName: string;
    readonly clusterEndpoint: string;
    readonly machineType: talos.MachineType;
    readonly talosVersion: string;
    readonly kubernetesVersion: string;
    readonly configPatches: readonly string[];
  };
  /** Applies before the chart. */
  readonly before: readonly ApplyStep[];
  /** Applies after the chart is up (the rolling reboot). */
  readonly after: readonly ApplyStep[];
  readonly keepLayers: KeepLayersState;
}

/** Plans one node: pure, so tests and `render` see exactly what `up` applies. */
export function planNode(
  clusterName: string,
  cfg: TalosConfig & { readonly generation: TalosGeneration },
  patches: PeiliTalosPatches,
  node: TalosNode,
): NodePlan {
  const g = cfg.generation;
  const generate = {
    clusterName,
    clusterEndpoint: g.clusterEndpoint,
    machineType: node.machineType,
    talosVersion: cfg.talosVersion,
    kubernetesVersion: g.kubernetesVersion,
    // The install patch first: a user patch that sets install itself still wins.
    configPatches: [
      installPatch(g.installImage, node.installDisk ?? g.installDisk),
      ...g.configPatches,
      ...node.configPatches,
    ],
  };
  const both = [patches.registries, patches.keepLayers];
  if (!patches.keepLayersNeedsReboot || cfg.keepLayers === 'applied')
    return {
      node,
      generate,
      before: [{ name: 'config', patches: both, mode: 'no_reboot' }],
      after: [],
      keepLayers: 'applied',
    };
  const registries: ApplyStep = { name: 'registries', patches: [patches.registries], mode: 'no_reboot' };
  if (cfg.keepLayers === 'rolling-reboot')
    return {
      node,
      generate,
      before: [registries],
      after: [{ name: 'keep-layers', patches: both, mode: 'reboot' }],
      keepLayers: 'rolling reboot',
    };
  return {
    node,
    generate,
    before: [registries, { name: 'keep-layers', patches: both, mode: 'staged' }],
    after: [],
    keepLayers: 'pending reboot',
  };
}

/** A node's state before its keep-layers apply. */
export interface NodeBefore {
  /** Kubernetes' boot id of the node. */
  readonly bootId: string;
  /** Whether its daemon already reported `serving` (mirror configured, layers kept). */
  readonly serving: boolean;
}
/** Reads a node's state before its reboot. */
export type NodeBeforeReader = (node: TalosNode) => Promise<NodeBefore>;
/** Waits after a node's reboot until it serves again; resolves to a word for the outputs. */
export type RebootWaiter = (node: TalosNode, before: NodeBefore) => Promise<string>;

/** Arguments of `TalosMirrorConfig`. */
export interface TalosMirrorConfigArgs {
  readonly clusterName: string;
  readonly talos: TalosConfig & { readonly generation: TalosGeneration };
  readonly patches: PeiliTalosPatches;
}

/** The applies of one node, by step name. */
export type NodeApplies = Record<string, talos.machine.ConfigurationApply>;

/** Applies the steps that come before the chart, one node after the other. */
export class TalosMirrorConfig extends pulumi.ComponentResource {
  /** Each node's plan, in node order. */
  public readonly plans: readonly NodePlan[];
  /** Each node's applies, by node name. */
  public readonly applies: Readonly<Record<string, NodeApplies>>;
  /** A talosconfig for the nodes (secret). */
  public readonly talosconfig: pulumi.Output<string>;

  constructor(name: string, args: TalosMirrorConfigArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:talos:TalosMirrorConfig', name, {}, opts);
    const g = args.talos.generation;
    this.plans = args.talos.nodes.map((n) => planNode(args.clusterName, args.talos, args.patches, n));
    const applies: Record<string, NodeApplies> = {};
    let previous: pulumi.Resource | undefined;
    for (const plan of this.plans) {
      const generated = generateConfig(plan, g, this);
      const nodeApplies: NodeApplies = {};
      for (const step of plan.before) {
        const apply = applyStep(`${name}-${plan.node.name}-${step.name}`, plan.node, step, generated, g, {
          parent: this,
          // One node at a time, and each node's steps in order.
          dependsOn: [...inheritedDependsOn(opts), ...(previous ? [previous] : [])],
        });
        nodeApplies[step.name] = apply;
        previous = apply;
      }
      applies[plan.node.name] = nodeApplies;
    }
    this.applies = applies;
    this.talosconfig = pulumi.secret(
      talos.client.getConfigurationOutput(
        {
          clusterName: args.clusterName,
          clientConfiguration: g.clientConfiguration,
          endpoints: args.talos.nodes.filter((n) => n.machineType === 'controlplane').map((n) => n.endpoint),
          nodes: args.talos.nodes.map((n) => n.address),
        },
        { parent: this },
      ).talosConfig,
    );
    this.registerOutputs({});
  }
}

/** Arguments of `TalosRollingReboot`. */
export interface TalosRollingRebootArgs {
  readonly talos: TalosConfig & { readonly generation: TalosGeneration };
  readonly plans: readonly NodePlan[];
  /** Reads a node's state before its apply (skipped in previews). */
  readonly before: NodeBeforeReader;
  /** Waits for a rebooted node (skipped in previews). */
  readonly wait: RebootWaiter;
}

/** Applies the keep-layers part with a reboot, one node at a time, waiting for each node. */
export class TalosRollingReboot extends pulumi.ComponentResource {
  /** Each node's applies. */
  public readonly applies: Readonly<Record<string, NodeApplies>>;
  /** What the wait saw on each node after its reboot. */
  public readonly results: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: TalosRollingRebootArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:talos:TalosRollingReboot', name, {}, opts);
    const applies: Record<string, NodeApplies> = {};
    const results: pulumi.Output<[string, string]>[] = [];
    let gate: pulumi.Output<unknown> = pulumi.output(true);
    for (const plan of args.plans) {
      const generated = generateConfig(plan, args.talos.generation, this);
      const nodeApplies: NodeApplies = {};
      for (const step of plan.after) {
        // The boot id is read once the previous node is back; the patches only resolve after it,
        // so this node's apply (and reboot) cannot start earlier.
        const before = gate.apply((): Promise<NodeBefore> =>
          pulumi.runtime.isDryRun()
            ? Promise.resolve({ bootId: '', serving: false })
            : args.before(plan.node),
        );
        const apply = applyStep(
          `${name}-${plan.node.name}-${step.name}`,
          plan.node,
          step,
          generated,
          args.talos.generation,
          { parent: this, dependsOn: inheritedDependsOn(opts) },
          before.apply(() => [...step.patches]),
        );
        nodeApplies[step.name] = apply;
        const done = pulumi
          .all([apply.resolvedApplyMode, before])
          .apply(([, b]) =>
            pulumi.runtime.isDryRun() ? Promise.resolve('preview') : args.wait(plan.node, b),
          );
        results.push(done.apply((r) => [plan.node.name, r] as [string, string]));
        gate = done;
      }
      applies[plan.node.name] = nodeApplies;
    }
    this.applies = applies;
    this.results = pulumi.all(results).apply((rs) => Object.fromEntries(rs));
    this.registerOutputs({ results: this.results });
  }
}

function generateConfig(
  plan: NodePlan,
  g: TalosGeneration,
  parent: pulumi.Resource,
): pulumi.Output<talos.machine.GetConfigurationResult> {
  return talos.machine.getConfigurationOutput(
    {
      ...plan.generate,
      configPatches: [...plan.generate.configPatches],
      machineSecrets: g.machineSecrets,
      docs: false,
      examples: false,
    },
    { parent },
  );
}

function applyStep(
  resourceName: string,
  node: TalosNode,
  step: ApplyStep,
  generated: pulumi.Output<talos.machine.GetConfigurationResult>,
  g: TalosGeneration,
  opts: pulumi.CustomResourceOptions,
  patches?: pulumi.Input<string[]>,
): talos.machine.ConfigurationApply {
  return new talos.machine.ConfigurationApply(
    resourceName,
    {
      clientConfiguration: g.clientConfiguration,
      machineConfigurationInput: pulumi.secret(generated.machineConfiguration),
      node: node.address,
      endpoint: node.endpoint,
      configPatches: patches ?? [...step.patches],
      applyMode: step.mode,
    },
    opts,
  );
}
