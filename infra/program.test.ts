import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadStackConfig, StackConfigError, type StackConfig } from './config.js';
import {
  MockRunError,
  runUnderMocks,
  type MockConfig,
  type Registration,
  type RunResult,
  type MockWorld,
} from './mock-engine.js';
import { createPeiliStack, mirrorValuesFor } from './program.js';
import { loadStackFile } from './stack-files.js';
import { joinPatches, peiliTalosPatches } from './talos-patch.js';

const INFRA_PATCHES = peiliTalosPatches(
  'v1.11.6',
  ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io'],
  'http://127.0.0.1:29999',
);
import { TALOS_PLUGIN_DOWNLOAD_URL, TALOS_PROVIDER_VERSION } from './talos/types.js';
import { mockConfig, validValues } from './test-fixtures.js';

const APPLY = 'talos:machine/configurationApply:ConfigurationApply';
const HELM_RELEASE = 'kubernetes:helm.toolkit.fluxcd.io/v2:HelmRelease';

interface Run extends RunResult {
  readonly cfg: StackConfig;
}

async function run(config: MockConfig, stack: string, world?: MockWorld): Promise<Run> {
  let cfg: StackConfig | undefined;
  const result = await runUnderMocks(
    () => {
      cfg = loadStackConfig();
      return createPeiliStack(cfg);
    },
    config,
    { stack, ...(world ? { world } : {}) },
  );
  return { ...result, cfg: cfg as StackConfig };
}

const last = (urn: string): string => urn.split('::').pop() ?? '';

function one(r: RunResult, type: string): Registration {
  const found = r.registrations.filter((x) => x.type === type);
  assert.equal(found.length, 1, `exactly one ${type}`);
  return found[0] as Registration;
}

/** [kind, type, name, parent name] of every registration, sorted for a stable comparison. */
function shape(r: RunResult): string[][] {
  return r.registrations
    .map((x) => [x.kind, x.type, x.name, last(x.parent)])
    .sort((a, b) => a.join().localeCompare(b.join()));
}

describe('stack infra (Flux HelmRelease)', () => {
  let r: Run;
  before(async () => {
    r = await run(loadStackFile('infra'), 'infra');
  });

  it('creates every resource under the right parent', () => {
    const nodes = ['infra-cp-1', 'infra-cp-2', 'infra-cp-3', 'infra-worker-1'];
    const expected = [
      ['register', 'pulumi:pulumi:Stack', 'peili-infra', ''],
      ['register', 'pulumi:providers:kubernetes', 'infra-k8s', 'peili-infra'],
      ['register', 'peili:talos:TalosMirrorConfig', 'infra-talos', 'peili-infra'],
      ...nodes.flatMap((n) => [
        ['register', APPLY, `infra-talos-${n}-registries`, 'infra-talos'],
        ['register', APPLY, `infra-talos-${n}-keep-layers`, 'infra-talos'],
      ]),
      ['register', 'peili:k8s:MirrorNamespace', 'infra-mirror', 'peili-infra'],
      ['register', 'kubernetes:core/v1:Namespace', 'infra-mirror-namespace', 'infra-mirror'],
      ['register', 'kubernetes:core/v1:ConfigMap', 'infra-mirror-cluster-settings', 'infra-mirror'],
      ['register', 'peili:flux:FluxRelease', 'infra-flux', 'peili-infra'],
      ['register', 'kubernetes:source.toolkit.fluxcd.io/v1:OCIRepository', 'infra-flux-chart', 'infra-flux'],
      ['register', HELM_RELEASE, 'infra-flux-release', 'infra-flux'],
      ['register', 'peili:observability:MirrorAlerts', 'infra-alerts', 'peili-infra'],
      ['register', 'kubernetes:monitoring.coreos.com/v1:PrometheusRule', 'infra-alerts-rule', 'infra-alerts'],
      ['register', 'peili:health:MirrorHealth', 'infra-health', 'peili-infra'],
      ['read', 'kubernetes:apps/v1:DaemonSet', 'infra-health-daemonset', 'infra-health'],
    ].sort((a, b) => a.join().localeCompare(b.join()));
    assert.deepEqual(shape(r), expected);
  });

  it('sends every Kubernetes object through the stack kubeconfig provider', () => {
    const provider = one(r, 'pulumi:providers:kubernetes');
    for (const x of r.registrations.filter((y) => y.custom && y.type.startsWith('kubernetes:'))) {
      assert.equal(
        x.provider.split('::').slice(0, -1).join('::'),
        provider.urn,
        `${x.name} uses the stack provider`,
      );
    }
  });

  it('applies the registries without a reboot and stages keep-layers, node after node, with the plugin options', () => {
    const applies = r.registrations.filter((x) => x.type === APPLY);
    assert.deepEqual(
      applies.map((a) => [a.inputs.node, a.inputs.endpoint, a.inputs.applyMode, a.inputs.configPatches]),
      ['10.10.0.11', '10.10.0.12', '10.10.0.13', '10.10.0.21'].flatMap((ip) => [
        [ip, ip, 'no_reboot', [INFRA_PATCHES.registries]],
        [ip, ip, 'staged', [INFRA_PATCHES.registries, INFRA_PATCHES.keepLayers]],
      ]),
    );
    applies.forEach((a, i) => {
      assert.equal(a.version, TALOS_PROVIDER_VERSION);
      assert.equal(a.pluginDownloadURL, TALOS_PLUGIN_DOWNLOAD_URL);
      assert.deepEqual(a.dependencies, i === 0 ? [] : [applies[i - 1]?.urn]);
      assert.equal(
        a.inputs.machineConfigurationInput,
        `# generated ${i < 6 ? 'controlplane' : 'worker'} config for infra\n`,
      );
    });
  });

  it('generates each node config from the stack secrets, its machine type and its own patches', () => {
    const gens = r.invocations.filter((i) => i.token === 'talos:machine/getConfiguration:getConfiguration');
    assert.deepEqual(
      gens.map((g) => [
        g.inputs.clusterName,
        g.inputs.clusterEndpoint,
        g.inputs.machineType,
        g.inputs.talosVersion,
        g.inputs.kubernetesVersion,
        g.inputs.configPatches,
      ]),
      (
        [
          ['controlplane', '/dev/sda'],
          ['controlplane', '/dev/sda'],
          ['controlplane', '/dev/sda'],
          ['worker', '/dev/nvme0n1'],
        ] as const
      ).map(([t, disk]) => [
        'infra',
        'https://10.10.0.10:6443',
        t,
        'v1.11.6',
        '1.34.1',
        [`machine:\n  install:\n    image: ghcr.io/siderolabs/installer:v1.11.6\n    disk: ${disk}\n`],
      ]),
    );
    for (const g of r.invocations) {
      assert.equal(g.version, TALOS_PROVIDER_VERSION);
      assert.equal(g.pluginDownloadURL, TALOS_PLUGIN_DOWNLOAD_URL);
    }
    assert.deepEqual(
      gens[0]?.inputs.machineSecrets,
      r.cfg.talos && loadStackFile('infra').values.talosMachineSecrets,
    );
  });

  it('creates the HelmRelease after the Talos applies, the namespace and the OCIRepository; no CoreDNS wait', () => {
    const hr = one(r, HELM_RELEASE);
    const deps = hr.dependencies.map(last).sort();
    assert.deepEqual(deps, [
      'infra-flux-chart',
      'infra-mirror-cluster-settings',
      'infra-mirror-namespace',
      ...['infra-cp-1', 'infra-cp-2', 'infra-cp-3', 'infra-worker-1'].flatMap((n) => [
        `infra-talos-${n}-keep-layers`,
        `infra-talos-${n}-registries`,
      ]),
    ]);
    const spec = hr.inputs.spec as Record<string, unknown>;
    // Talos deploys CoreDNS itself: the stack file names none to wait for.
    assert.equal('dependsOn' in spec, false);
    assert.deepEqual(spec.chartRef, { kind: 'OCIRepository', name: 'peili', namespace: 'peili' });
    assert.deepEqual(spec.install, { remediation: { retries: 3 } });
    assert.deepEqual(spec.upgrade, {
      cleanupOnFail: true,
      remediation: { retries: 3, remediateLastFailure: true, strategy: 'rollback' },
    });
    assert.deepEqual((hr.inputs.metadata as { annotations: unknown }).annotations, {
      'pulumi.com/waitFor': 'condition=Ready',
      'pulumi.com/timeoutSeconds': '900',
    });
  });

  it('puts only the values the stack file sets (and the stack-owned keys) into the HelmRelease', () => {
    const values = (one(r, HELM_RELEASE).inputs.spec as { values: unknown }).values;
    assert.deepEqual(values, JSON.parse(JSON.stringify(mirrorValuesFor(r.cfg))));
    assert.deepEqual(values, {
      fullnameOverride: 'peili',
      peili: {
        configureHosts: false,
        mirroredRegistries: ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io'],
        resolveTagsFilter: [':latest$'],
      },
      service: { registry: { hostPort: 29999 } },
      serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
      grafanaDashboard: { enabled: true, mode: 'configmap' },
    });
  });

  it('labels the namespace privileged and fills cluster-settings', () => {
    const ns = one(r, 'kubernetes:core/v1:Namespace');
    const labels = (ns.inputs.metadata as { labels: Record<string, string> }).labels;
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'privileged');
    const cm = one(r, 'kubernetes:core/v1:ConfigMap');
    assert.deepEqual(cm.inputs.data, {
      CLUSTER_NAME: 'infra',
      PEILI_NAMESPACE: 'peili',
      PEILI_RELEASE_NAME: 'peili',
      PEILI_HOST_PORT: '29999',
      PEILI_REGISTRY_CONFIG_PATH: 'talos',
      PEILI_MIRRORED_REGISTRIES: 'docker.io,ghcr.io,quay.io,registry.k8s.io',
      PEILI_CHART_URL: 'oci://ghcr.io/peili-dev/charts/peili',
      PEILI_CHART_VERSION: '0.1.0',
    });
  });

  it('reads the DaemonSet only after the rollout', () => {
    const ds = one(r, 'kubernetes:apps/v1:DaemonSet');
    assert.equal(ds.id, 'peili/peili');
    assert.deepEqual(ds.dependencies, [one(r, HELM_RELEASE).urn]);
  });

  it('exports the documented outputs', () => {
    assert.deepEqual(r.outputs, {
      clusterName: 'infra',
      deployMode: 'helmrelease',
      namespace: 'peili',
      hostPort: 29999,
      registryEndpoints: {
        'infra-cp-1': 'http://127.0.0.1:29999',
        'infra-cp-2': 'http://127.0.0.1:29999',
        'infra-cp-3': 'http://127.0.0.1:29999',
        'infra-worker-1': 'http://127.0.0.1:29999',
      },
      mirroredRegistries: ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io'],
      chartUrl: 'oci://ghcr.io/peili-dev/charts/peili',
      chartVersion: '0.1.0',
      // No cluster to ask the daemons: the pods being ready proves nothing more.
      health: { desired: 3, ready: 3, updated: 3, status: 'unknown', nodes: 'not read' },
      talosPatch: joinPatches([INFRA_PATCHES.registries, INFRA_PATCHES.keepLayers]),
      talosPatches: INFRA_PATCHES,
      talosNodes: Object.fromEntries(
        ['infra-cp-1', 'infra-cp-2', 'infra-cp-3', 'infra-worker-1'].map((n) => [
          n,
          { registries: 'applied', keepLayers: 'pending reboot' },
        ]),
      ),
      talosApplyModes: {
        'infra-cp-1': 'staged',
        'infra-cp-2': 'staged',
        'infra-cp-3': 'staged',
        'infra-worker-1': 'staged',
      },
      talosconfig: 'context: infra\n',
    });
  });

  it('keeps secrets secret: kubeconfig, Talos credentials, machine configs and the talosconfig', () => {
    assert.deepEqual(one(r, 'pulumi:providers:kubernetes').secretInputs, ['kubeconfig']);
    for (const a of r.registrations.filter((x) => x.type === APPLY)) {
      assert.deepEqual([...a.secretInputs].sort(), ['clientConfiguration', 'machineConfigurationInput']);
      assert.deepEqual([...a.additionalSecretOutputs].sort(), [
        'clientConfiguration',
        'machineConfiguration',
        'machineConfigurationInput',
      ]);
    }
    assert.deepEqual(r.secretOutputs, ['talosconfig']);
    // No secret value leaks into a non-secret input of any resource.
    const secretTexts = ['placeholder-key', 'placeholder-ca', 'the real kubeconfig'];
    for (const x of r.registrations) {
      for (const [k, v] of Object.entries(x.inputs)) {
        if (x.secretInputs.includes(k)) continue;
        for (const s of secretTexts)
          assert.equal(JSON.stringify(v ?? null).includes(s), false, `${x.name}.${k} holds a secret`);
      }
    }
  });
});

describe('stack apps (Git-managed, Flux Kustomization)', () => {
  let r: Run;
  before(async () => {
    r = await run(loadStackFile('apps'), 'apps');
  });

  it('creates a Kustomization instead of the OCIRepository and HelmRelease', () => {
    assert.equal(
      r.registrations.some((x) => x.type === HELM_RELEASE || x.type.endsWith(':OCIRepository')),
      false,
    );
    const k = one(r, 'kubernetes:kustomize.toolkit.fluxcd.io/v1:Kustomization');
    assert.equal(last(k.parent), 'apps-flux');
    const spec = k.inputs.spec as Record<string, unknown>;
    assert.deepEqual(spec.dependsOn, [{ name: 'coredns', namespace: 'flux-system' }]);
    assert.deepEqual(spec.healthChecks, [
      { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'peili', namespace: 'peili' },
    ]);
    assert.equal('postBuild' in spec, false);
    // Beside its GitRepository: the source reference stays in the Kustomization's namespace.
    assert.equal((k.inputs.metadata as { namespace: string }).namespace, 'flux-system');
    assert.deepEqual(spec.sourceRef, { kind: 'GitRepository', name: 'flux-system' });
    assert.equal(spec.path, './clusters/apps/peili');
    // Talos is owned by talhelper here: nothing to wait for but the namespace.
    assert.deepEqual(k.dependencies.map(last).sort(), [
      'apps-mirror-cluster-settings',
      'apps-mirror-namespace',
    ]);
    assert.deepEqual(one(r, 'kubernetes:apps/v1:DaemonSet').dependencies, [k.urn]);
  });

  it('applies nothing to Talos (owned by talhelper) and outputs the 1.12 documents', () => {
    assert.equal(r.invocations.length, 0);
    assert.equal(
      r.registrations.some((x) => x.type.startsWith('talos:')),
      false,
    );
    assert.equal(
      r.outputs.talosPatch,
      joinPatches([
        peiliTalosPatches('v1.12.11', ['docker.io', 'ghcr.io'], 'http://127.0.0.1:29999').registries,
        peiliTalosPatches('v1.12.11', [], '').keepLayers,
      ]),
    );
  });

  it('creates no alerts when they are off', () => {
    assert.equal(
      r.registrations.some((x) => x.type.endsWith(':PrometheusRule')),
      false,
    );
    assert.equal(r.outputs.deployMode, 'kustomization');
  });
});

describe('bootstrap (Flux not running yet)', () => {
  let boot: Run;
  let flux: Run;
  before(async () => {
    const values = validValues();
    flux = await run(mockConfig(values), 'lab');
    boot = await run(mockConfig({ ...values, deploy: { mode: 'bootstrap', coreDns: false } }), 'lab');
  });

  it('installs the same chart with the same values through Helm, kept on delete for Flux to adopt', () => {
    assert.equal(
      boot.registrations.some((x) => x.type.includes('fluxcd.io')),
      false,
    );
    const release = one(boot, 'kubernetes:helm.sh/v3:Release');
    const hr = one(flux, HELM_RELEASE);
    const hrSpec = hr.inputs.spec as { releaseName: string; storageNamespace: string; values: unknown };
    assert.equal(release.inputs.name, hrSpec.releaseName);
    assert.equal(release.inputs.namespace, hrSpec.storageNamespace);
    assert.deepEqual(release.inputs.values, hrSpec.values);
    assert.equal(release.inputs.chart, 'oci://ghcr.io/peili-dev/charts/peili');
    assert.equal(release.inputs.version, '0.1.0');
    assert.equal(release.retainOnDelete, true);
    assert.deepEqual(release.dependencies.map(last).sort(), [
      'lab-mirror-cluster-settings',
      'lab-mirror-namespace',
      'lab-talos-cp-1-keep-layers',
      'lab-talos-cp-1-registries',
      'lab-talos-worker-1-keep-layers',
      'lab-talos-worker-1-registries',
    ]);
    assert.equal(boot.outputs.deployMode, 'bootstrap');
  });
});

describe('outputs from the mocked DaemonSet', () => {
  const cases: [string, MockWorld['daemonSetStatus'], unknown][] = [
    [
      'rolling',
      { desiredNumberScheduled: 4, numberReady: 4, updatedNumberScheduled: 2 },
      { desired: 4, ready: 4, updated: 2, status: 'progressing', nodes: 'not read' },
    ],
    [
      'one down',
      { desiredNumberScheduled: 4, numberReady: 3, updatedNumberScheduled: 4 },
      { desired: 4, ready: 3, updated: 4, status: 'degraded', nodes: 'not read' },
    ],
    [
      'all down',
      { desiredNumberScheduled: 4, numberReady: 0, updatedNumberScheduled: 0 },
      { desired: 4, ready: 0, updated: 0, status: 'down', nodes: 'not read' },
    ],
  ];
  for (const [name, status, health] of cases) {
    it(name, async () => {
      const r = await run(mockConfig(validValues()), 'lab', { daemonSetStatus: status });
      assert.deepEqual(r.outputs.health, health);
    });
  }
});

describe('the Pulumi entry point', () => {
  it('builds the stack from the engine config, as `pulumi up` runs it', async () => {
    const { default: main } = await import('./index.js');
    const viaEntry = await runUnderMocks(main, loadStackFile('apps'), { stack: 'apps' });
    const direct = await run(loadStackFile('apps'), 'apps');
    assert.deepEqual(shape(viaEntry), shape(direct));
    // The entry point asks the cluster for each node's report; offline that fails and says so.
    const { health, registryEndpoints, ...rest } = viaEntry.outputs;
    const { health: h2, registryEndpoints: e2, ...rest2 } = direct.outputs;
    assert.deepEqual(rest, rest2);
    assert.match(String((health as { nodes: string }).nodes), /^could not be read: kubeconfig: no context/);
    assert.equal((h2 as { nodes: string }).nodes, 'not read');
    assert.deepEqual(registryEndpoints, e2);
  });
});

describe('config errors', () => {
  it('fail before any resource is registered, naming the key', async () => {
    const values = validValues();
    values.values = { peili: { resolveTags: 'sometimes' } };
    await assert.rejects(run(mockConfig(values), 'lab'), (err: unknown) => {
      assert.ok(err instanceof MockRunError);
      assert.ok(err.cause instanceof StackConfigError);
      assert.equal(
        err.message,
        'invalid stack configuration:\n  peili:values.peili.resolveTags: must be one of upstream-down, always, never',
      );
      // At most the stack itself: no provider, no Talos apply, no Kubernetes object.
      assert.deepEqual(
        err.registrations.filter((x) => x.type !== 'pulumi:pulumi:Stack'),
        [],
      );
      return true;
    });
  });

  it('refuse a stack without Talos secrets', async () => {
    const values = validValues();
    delete values.talosMachineSecrets;
    await assert.rejects(run(mockConfig(values), 'lab'), {
      message:
        "invalid stack configuration:\n  peili:talosMachineSecrets: is required (pulumi config set --secret talosMachineSecrets '<JSON>', see docs/deploy-pulumi.md)",
    });
  });
});
