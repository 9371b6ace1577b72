import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import { parseStackConfig, StackConfigError } from './config.js';
import { sourceOf, validValues } from './test-fixtures.js';

function errorOf(values: Record<string, unknown>, secretKeys?: string[]): string {
  try {
    parseStackConfig(sourceOf(values, secretKeys));
  } catch (err) {
    assert.ok(err instanceof StackConfigError);
    return err.message;
  }
  assert.fail('expected a StackConfigError');
}

function withValue(path: string, value: unknown): Record<string, unknown> {
  const values = validValues();
  const parts = path.split('.');
  let o = values as Record<string, unknown>;
  for (const p of parts.slice(0, -1)) o = o[p] as Record<string, unknown>;
  const last = parts.at(-1) as string;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return values;
}

describe('parseStackConfig', () => {
  it('returns the typed config with every default applied', () => {
    const cfg = parseStackConfig(sourceOf(validValues()));
    assert.equal(cfg.clusterName, 'lab');
    assert.deepEqual(cfg.chart, {
      url: 'oci://ghcr.io/peili-dev/charts/peili',
      version: '0.1.0',
      interval: '10m',
    });
    assert.deepEqual(cfg.deploy, {
      mode: 'helmrelease',
      namespace: 'peili',
      releaseName: 'peili',
      coreDns: { name: 'coredns', namespace: 'kube-system' },
      interval: '10m',
    });
    assert.deepEqual(cfg.mirror, {
      mirroredRegistries: ['docker.io', 'ghcr.io'],
      prependExisting: false,
      resolveTags: 'upstream-down',
      resolveTagsFilter: [],
      logLevel: 'info',
      hostPort: 29999,
    });
    assert.deepEqual(cfg.observability, {
      serviceMonitor: false,
      serviceMonitorLabels: {},
      grafanaDashboard: false,
      alerts: false,
    });
    assert.equal(cfg.talos?.applyMode, 'staged_if_needing_reboot');
    assert.deepEqual(cfg.talos?.nodes, [
      {
        name: 'cp-1',
        address: '10.0.0.11',
        endpoint: '10.0.0.11',
        machineType: 'controlplane',
        configPatches: ['machine: {}\n'],
      },
      {
        name: 'worker-1',
        address: '10.0.0.21',
        endpoint: '10.0.0.11',
        machineType: 'worker',
        configPatches: [],
      },
    ]);
    assert.ok(Object.isFrozen(cfg));
  });

  it('keeps the kubeconfig and the Talos credentials secret', async () => {
    const cfg = parseStackConfig(sourceOf(validValues()));
    assert.equal(await pulumi.isSecret(cfg.kubeconfig), true);
    assert.equal(await pulumi.isSecret(cfg.talos?.clientConfiguration as pulumi.Output<unknown>), true);
    assert.equal(await pulumi.isSecret(cfg.talos?.machineSecrets as pulumi.Output<unknown>), true);
  });

  it('reads a Git-managed cluster, CoreDNS defaulting to the flux-system Kustomization', () => {
    const values = withValue('deploy', {
      mode: 'kustomization',
      git: { repository: { name: 'fleet' }, path: './clusters/lab' },
    });
    const cfg = parseStackConfig(sourceOf(values));
    assert.deepEqual(cfg.deploy.git, {
      repository: { name: 'fleet', namespace: 'flux-system' },
      path: './clusters/lab',
    });
    assert.deepEqual(cfg.deploy.coreDns, { name: 'coredns', namespace: 'flux-system' });
  });

  it('leaves Talos out when talos.enabled is false, without asking for Talos secrets', () => {
    const values = validValues();
    values.talos = { enabled: false };
    delete values.talosClientConfiguration;
    delete values.talosMachineSecrets;
    assert.equal(parseStackConfig(sourceOf(values)).talos, undefined);
  });

  const cases: { name: string; values: Record<string, unknown>; secretKeys?: string[]; message: string }[] = [
    {
      name: 'missing cluster name',
      values: withValue('clusterName', undefined),
      message: 'peili:clusterName: is required',
    },
    {
      name: 'cluster name not a DNS label',
      values: withValue('clusterName', 'Lab_1'),
      message: "peili:clusterName: must be a DNS label (lower-case letters, digits, -) (got 'Lab_1')",
    },
    {
      name: 'kubeconfig in clear text',
      values: validValues(),
      secretKeys: ['talosClientConfiguration', 'talosMachineSecrets'],
      message: 'peili:kubeconfig: must be stored as a secret (pulumi config set --secret kubeconfig …)',
    },
    {
      name: 'missing chart version',
      values: withValue('chart', {}),
      message: 'peili:chart.version: is required',
    },
    {
      name: 'chart URL not OCI',
      values: withValue('chart', { url: 'https://example.com/peili', version: '0.1.0' }),
      message: "peili:chart.url: must be an oci:// chart URL without tag (got 'https://example.com/peili')",
    },
    {
      name: 'unknown deploy mode',
      values: withValue('deploy', { mode: 'argo' }),
      message: 'peili:deploy.mode: must be one of helmrelease, kustomization, bootstrap (got "argo")',
    },
    {
      name: 'kustomization mode without git',
      values: withValue('deploy', { mode: 'kustomization' }),
      message: "peili:deploy.git: is required when deploy.mode is 'kustomization'",
    },
    {
      name: 'typo in a key',
      values: withValue('mirror', { mirroredRegistries: [], logLevl: 'debug' }),
      message:
        'peili:mirror.logLevl: unknown key (allowed: imageRepository, imageTag, imageDigest, mirroredRegistries, prependExisting, resolveTags, resolveTagsFilter, logLevel, hostPort)',
    },
    {
      name: 'registries not given',
      values: withValue('mirror', {}),
      message:
        'peili:mirror.mirroredRegistries: is required (a list of registry hosts; [] mirrors every registry)',
    },
    {
      name: 'hostPort out of range',
      values: withValue('mirror', { mirroredRegistries: [], hostPort: 70000 }),
      message: 'peili:mirror.hostPort: must be a port number 1-65535 (got 70000)',
    },
    {
      name: 'bad tag filter regex',
      values: withValue('mirror', { mirroredRegistries: [], resolveTagsFilter: ['(latest'] }),
      message: "peili:mirror.resolveTagsFilter[0]: is not a valid regular expression ('(latest')",
    },
    {
      name: 'bad apply mode',
      values: withValue('talos.applyMode', 'yolo'),
      message:
        'peili:talos.applyMode: must be one of auto, reboot, no_reboot, staged, staged_if_needing_reboot (got "yolo")',
    },
    {
      name: 'no nodes',
      values: withValue('talos.nodes', []),
      message: 'peili:talos.nodes: must be a non-empty list of nodes',
    },
    {
      name: 'node without machine type',
      values: withValue('talos.nodes', [{ name: 'n1', address: '10.0.0.5' }]),
      message: 'peili:talos.nodes[0].machineType: is required',
    },
    {
      name: 'duplicate node names',
      values: withValue('talos.nodes', [
        { name: 'n1', address: '10.0.0.5', machineType: 'worker' },
        { name: 'n1', address: '10.0.0.6', machineType: 'worker' },
      ]),
      message: "peili:talos.nodes[1].name: duplicate node name 'n1'",
    },
    {
      name: 'machine secrets missing a certificate',
      values: (() => {
        const v = validValues();
        delete (v.talosMachineSecrets as { certs: Record<string, unknown> }).certs.os;
        return v;
      })(),
      message: 'peili:talosMachineSecrets.certs.os: is required',
    },
    {
      name: 'client configuration missing its key',
      values: withValue('talosClientConfiguration', { caCertificate: 'a', clientCertificate: 'b' }),
      message: 'peili:talosClientConfiguration.clientKey: is required',
    },
    {
      name: 'alerts without a ServiceMonitor',
      values: withValue('observability', { alerts: true }),
      message:
        'peili:observability.alerts: needs observability.serviceMonitor: true (the alerts use the scraped metrics)',
    },
  ];
  for (const c of cases) {
    it(`rejects ${c.name}`, () => {
      assert.equal(errorOf(c.values, c.secretKeys), `invalid stack configuration:\n  ${c.message}`);
    });
  }

  it('lists every problem at once', () => {
    const values = withValue('clusterName', undefined);
    (values.mirror as Record<string, unknown>).logLevel = 'loud';
    assert.equal(
      errorOf(values),
      'invalid stack configuration:\n  peili:clusterName: is required\n  peili:mirror.logLevel: must be one of fatal, error, warn, info, debug, trace (got "loud")',
    );
  });
});
