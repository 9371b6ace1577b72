import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { loadStackConfig, parseStackConfig, type TalosConfig, type TalosGeneration } from './config.js';
import type { KubeApi } from './kube-api.js';
import { runUnderMocks, type RunResult } from './mock-engine.js';
import { createPeiliStack, talosPatchesFor } from './program.js';
import { loadStackFile } from './stack-files.js';
import { planNode } from './talos-apply.js';
import { applyPatches, flatten } from './talos-merge.js';
import { criCustomizationToml, installPatch } from './talos-patch.js';

const TOML = JSON.stringify(criCustomizationToml());
import { mockConfig, sourceOf, validValues } from './test-fixtures.js';

const APPLY = 'talos:machine/configurationApply:ConfigurationApply';
const GENERATE = 'talos:machine/getConfiguration:getConfiguration';

/** A generated worker config as the provider returns it (the parts a patch can meet). */
const GENERATED = `version: v1alpha1
machine:
  type: worker
  token: placeholder
  install:
    disk: /dev/sda
    image: ghcr.io/siderolabs/installer:v1.11.6
  kubelet:
    image: ghcr.io/siderolabs/kubelet:v1.34.1
  registries: {}
  files: []
cluster:
  clusterName: lab
  controlPlane:
    endpoint: https://10.0.0.10:6443
`;

function owned(values: Record<string, unknown>): TalosConfig & { generation: TalosGeneration } {
  const cfg = parseStackConfig(sourceOf(values));
  return cfg.talos as TalosConfig & { generation: TalosGeneration };
}

function withTalos(over: Record<string, unknown>): Record<string, unknown> {
  const v = validValues();
  v.talos = { ...(v.talos as Record<string, unknown>), ...over };
  return v;
}

async function runStack(values: Record<string, unknown>): Promise<RunResult> {
  return runUnderMocks(() => createPeiliStack(loadStackConfig()), mockConfig(values));
}

describe('Talos apply plan', () => {
  const patchesOf = (values: Record<string, unknown>) => {
    const p = talosPatchesFor(parseStackConfig(sourceOf(values)));
    assert.ok(p);
    return p;
  };

  it('1.11, staged: registries at once without a reboot, keep-layers staged until the next reboot', () => {
    const values = validValues();
    const talos = owned(values);
    const p = patchesOf(values);
    const plan = planNode('lab', talos, p, talos.nodes[1] as TalosConfig['nodes'][number]);
    assert.deepEqual(
      plan.before.map((s) => [s.name, s.mode, s.patches]),
      [
        ['registries', 'no_reboot', [p.registries]],
        ['keep-layers', 'staged', [p.registries, p.keepLayers]],
      ],
    );
    assert.deepEqual(plan.after, []);
    assert.equal(plan.keepLayers, 'pending reboot');
  });

  it('1.11, rolling-reboot: the keep-layers apply reboots, after the chart', () => {
    const values = withTalos({ keepLayers: 'rolling-reboot' });
    const talos = owned(values);
    const p = patchesOf(values);
    const plan = planNode('lab', talos, p, talos.nodes[0] as TalosConfig['nodes'][number]);
    assert.deepEqual(
      plan.before.map((s) => [s.name, s.mode]),
      [['registries', 'no_reboot']],
    );
    assert.deepEqual(
      plan.after.map((s) => [s.name, s.mode, s.patches]),
      [['keep-layers', 'reboot', [p.registries, p.keepLayers]]],
    );
  });

  for (const [name, over] of [
    ['1.11, applied (every node already runs it)', { keepLayers: 'applied' }],
    ['1.14 (CRICustomizationConfig restarts CRI itself)', { talosVersion: 'v1.14.0' }],
  ] as const) {
    it(`${name}: one apply of both parts, without a reboot`, () => {
      const values = withTalos(over);
      const talos = owned(values);
      const p = patchesOf(values);
      const plan = planNode('lab', talos, p, talos.nodes[0] as TalosConfig['nodes'][number]);
      assert.deepEqual(
        plan.before.map((s) => [s.name, s.mode, s.patches]),
        [['config', 'no_reboot', [p.registries, p.keepLayers]]],
      );
      assert.equal(plan.keepLayers, 'applied');
    });
  }

  it('generates each node from the stack config only: versions, install image and disk, user patches', () => {
    const values = withTalos({ configPatches: ['cluster:\n  proxy:\n    disabled: true\n'] });
    ((values.talos as { nodes: Record<string, unknown>[] }).nodes[1] as Record<string, unknown>).installDisk =
      '/dev/nvme0n1';
    const talos = owned(values);
    const p = patchesOf(values);
    const [cp, worker] = talos.nodes.map((n) => planNode('lab', talos, p, n));
    assert.deepEqual(worker?.generate, {
      clusterName: 'lab',
      clusterEndpoint: 'https://10.0.0.10:6443',
      machineType: 'worker',
      talosVersion: 'v1.11.6',
      kubernetesVersion: '1.34.1',
      configPatches: [
        installPatch('ghcr.io/siderolabs/installer:v1.11.6', '/dev/nvme0n1'),
        'cluster:\n  proxy:\n    disabled: true\n',
      ],
    });
    assert.deepEqual(cp?.generate.configPatches, [
      installPatch('ghcr.io/siderolabs/installer:v1.11.6', '/dev/sda'),
      'cluster:\n  proxy:\n    disabled: true\n',
      'machine: {}\n',
    ]);
  });
});

describe("a node's config with and without Peili's parts", () => {
  // The generation inputs the program sends are the same with or without Peili (they come from
  // the stack config only); the final config is the generated one plus the apply's patches. So the
  // difference is exactly Peili's patches, checked here on a realistic generated config.
  const cases = [
    {
      version: 'v1.11.6',
      differs: [
        `v1alpha1.machine.files[0].content = ${TOML}`,
        'v1alpha1.machine.files[0].op = "create"',
        'v1alpha1.machine.files[0].path = "/etc/cri/conf.d/20-customization.part"',
        'v1alpha1.machine.registries.mirrors.docker.io.endpoints[0] = "http://127.0.0.1:29999"',
        'v1alpha1.machine.registries.mirrors.ghcr.io.endpoints[0] = "http://127.0.0.1:29999"',
      ],
    },
    {
      version: 'v1.12.11',
      differs: [
        'RegistryMirrorConfig/docker.io.apiVersion = "v1alpha1"',
        'RegistryMirrorConfig/docker.io.endpoints[0].url = "http://127.0.0.1:29999"',
        'RegistryMirrorConfig/docker.io.kind = "RegistryMirrorConfig"',
        'RegistryMirrorConfig/docker.io.name = "docker.io"',
        'RegistryMirrorConfig/ghcr.io.apiVersion = "v1alpha1"',
        'RegistryMirrorConfig/ghcr.io.endpoints[0].url = "http://127.0.0.1:29999"',
        'RegistryMirrorConfig/ghcr.io.kind = "RegistryMirrorConfig"',
        'RegistryMirrorConfig/ghcr.io.name = "ghcr.io"',
        `v1alpha1.machine.files[0].content = ${TOML}`,
        'v1alpha1.machine.files[0].op = "create"',
        'v1alpha1.machine.files[0].path = "/etc/cri/conf.d/20-customization.part"',
      ],
    },
    {
      version: 'v1.14.0',
      differs: [
        'CRICustomizationConfig/peili-keep-layers.apiVersion = "v1alpha1"',
        `CRICustomizationConfig/peili-keep-layers.content = ${TOML}`,
        'CRICustomizationConfig/peili-keep-layers.kind = "CRICustomizationConfig"',
        'CRICustomizationConfig/peili-keep-layers.name = "peili-keep-layers"',
        'RegistryMirrorConfig/docker.io.apiVersion = "v1alpha1"',
        'RegistryMirrorConfig/docker.io.endpoints[0].url = "http://127.0.0.1:29999"',
        'RegistryMirrorConfig/docker.io.kind = "RegistryMirrorConfig"',
        'RegistryMirrorConfig/docker.io.name = "docker.io"',
        'RegistryMirrorConfig/ghcr.io.apiVersion = "v1alpha1"',
        'RegistryMirrorConfig/ghcr.io.endpoints[0].url = "http://127.0.0.1:29999"',
        'RegistryMirrorConfig/ghcr.io.kind = "RegistryMirrorConfig"',
        'RegistryMirrorConfig/ghcr.io.name = "ghcr.io"',
      ],
    },
  ];
  for (const c of cases) {
    it(`Talos ${c.version}: every node differs only in Peili's parts`, async () => {
      const values = withTalos({ talosVersion: c.version });
      const r = await runStack(values);
      const gens = r.invocations.filter((i) => i.token === GENERATE);
      const applies = r.registrations.filter((x) => x.type === APPLY);
      for (const node of ['cp-1', 'worker-1']) {
        const nodeApplies = applies.filter((a) => a.name.startsWith(`lab-talos-${node}-`));
        const final = nodeApplies.at(-1);
        assert.ok(final, node);
        // Every apply of the node starts from the same generated input.
        const inputs = new Set(nodeApplies.map((a) => a.inputs.machineConfigurationInput));
        assert.equal(inputs.size, 1, node);
        const without = flatten(applyPatches(GENERATED, []));
        const withPeili = flatten(applyPatches(GENERATED, final.inputs.configPatches as string[]));
        const added = withPeili.filter((l) => !without.includes(l));
        const removed = without.filter((l) => !withPeili.includes(l));
        assert.deepEqual(removed, [], node);
        assert.deepEqual(added, c.differs, node);
      }
      // The generation carries the user's versions, never a provider default.
      for (const g of gens) {
        assert.equal(g.inputs.talosVersion, c.version);
        assert.equal(g.inputs.kubernetesVersion, '1.34.1');
        assert.deepEqual(parse((g.inputs.configPatches as string[])[0] ?? ''), {
          machine: { install: { image: 'ghcr.io/siderolabs/installer:v1.11.6', disk: '/dev/sda' } },
        });
      }
    });
  }

  it('external management: nothing is applied to Talos, the exact documents are in the outputs', async () => {
    const stack = loadStackFile('apps');
    const r = await runUnderMocks(() => createPeiliStack(loadStackConfig()), stack, { stack: 'apps' });
    assert.equal(r.registrations.filter((x) => x.type.startsWith('talos:')).length, 0);
    assert.equal(r.invocations.length, 0);
    const patches = r.outputs.talosPatches as {
      registries: string;
      keepLayers: string;
      keepLayersNeedsReboot: boolean;
    };
    assert.equal(patches.keepLayersNeedsReboot, true);
    assert.equal(r.outputs.talosPatch, `${patches.registries}---\n${patches.keepLayers}`);
    assert.deepEqual(r.outputs.talosNodes, {
      'apps-cp-1': { registries: 'external', keepLayers: 'external' },
      'apps-worker-1': { registries: 'external', keepLayers: 'external' },
      'apps-worker-2': { registries: 'external', keepLayers: 'external' },
      'apps-worker-3': { registries: 'external', keepLayers: 'external' },
    });
  });
});

describe('rolling reboot (Talos < 1.14, keepLayers: rolling-reboot)', () => {
  it('reboots one node at a time after the chart, each waited for until it serves again', async () => {
    const values = withTalos({ keepLayers: 'rolling-reboot' });
    const calls: string[] = [];
    const reads: Record<string, number> = {};
    const api: KubeApi = {
      get: async (path) => {
        calls.push(path);
        const nodeMatch = /^\/api\/v1\/nodes\/(.+)$/.exec(path);
        if (nodeMatch) {
          const name = nodeMatch[1] as string;
          reads[name] = (reads[name] ?? 0) + 1;
          // The first read is before the apply; every later one sees the node after its reboot.
          const boot = reads[name] === 1 ? 'before' : 'after';
          return JSON.stringify({
            status: {
              nodeInfo: { bootID: `${name}-${boot}` },
              conditions: [{ type: 'Ready', status: 'True' }],
            },
          });
        }
        if (path.startsWith('/api/v1/namespaces/peili/pods?'))
          return JSON.stringify({
            items: ['cp-1', 'worker-1'].map((n) => ({
              metadata: { name: `peili-${n}` },
              spec: { nodeName: n },
              status: { hostIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
            })),
          });
        const pod = /pods\/peili-(.+):9090\/proxy/.exec(path)?.[1] as string;
        const rebooted = (reads[pod] ?? 0) > 1;
        return JSON.stringify({
          node: {
            mirror: 'configured',
            layers: rebooted ? 'kept' : 'discarded',
            runtime: 'containerd 2.1.5',
          },
        });
      },
    };
    let now = 0;
    const r = await runUnderMocks(
      () =>
        createPeiliStack(loadStackConfig(), {
          kubeApi: () => api,
          rebootWait: { delay: async (ms) => void (now += ms), now: () => now },
        }),
      mockConfig(values),
      {
        world: { daemonSetStatus: { desiredNumberScheduled: 2, numberReady: 2, updatedNumberScheduled: 2 } },
      },
    );
    const reboots = r.registrations.filter((x) => x.type === APPLY && x.name.endsWith('-keep-layers'));
    assert.deepEqual(
      reboots.map((a) => [a.name, a.inputs.applyMode]),
      [
        ['lab-talos-reboot-cp-1-keep-layers', 'reboot'],
        ['lab-talos-reboot-worker-1-keep-layers', 'reboot'],
      ],
    );
    // After the chart is up.
    for (const a of reboots)
      assert.ok(
        a.dependencies.some((d) => d.endsWith('lab-flux-release')),
        a.name,
      );
    // worker-1's state is read only once cp-1 is back and serving.
    const nodeCalls = calls.filter((c) => c.startsWith('/api/v1/nodes/'));
    assert.deepEqual(nodeCalls, [
      '/api/v1/nodes/cp-1',
      '/api/v1/nodes/cp-1',
      '/api/v1/nodes/worker-1',
      '/api/v1/nodes/worker-1',
    ]);
    assert.deepEqual(r.outputs.talosNodes, {
      'cp-1': { registries: 'applied', keepLayers: 'rebooted, serving' },
      'worker-1': { registries: 'applied', keepLayers: 'rebooted, serving' },
    });
    const health = r.outputs.health as { status: string };
    assert.equal(health.status, 'healthy');
  });
});
