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
      coreDns: { name: 'coredns', namespace: 'flux-system' },
      interval: '10m',
    });
    assert.deepEqual(cfg.values, { peili: { mirroredRegistries: ['docker.io', 'ghcr.io'] } });
    assert.deepEqual(cfg.observability, { alerts: false, alertLabels: {} });
    const { generation, ...talos } = cfg.talos ?? {};
    assert.deepEqual(talos, {
      management: 'pulumi',
      talosVersion: 'v1.11.6',
      keepLayers: 'staged',
      rebootTimeout: '20m',
      nodes: [
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
      ],
    });
    assert.deepEqual(
      { ...generation, clientConfiguration: undefined, machineSecrets: undefined },
      {
        clusterEndpoint: 'https://10.0.0.10:6443',
        kubernetesVersion: '1.34.1',
        installImage: 'ghcr.io/siderolabs/installer:v1.11.6',
        installDisk: '/dev/sda',
        configPatches: [],
        clientConfiguration: undefined,
        machineSecrets: undefined,
      },
    );
    assert.ok(Object.isFrozen(cfg));
  });

  it('keeps the kubeconfig and the Talos credentials secret', async () => {
    const cfg = parseStackConfig(sourceOf(validValues()));
    assert.equal(await pulumi.isSecret(cfg.kubeconfig), true);
    const g = cfg.talos?.generation;
    assert.equal(await pulumi.isSecret(g?.clientConfiguration as pulumi.Output<unknown>), true);
    assert.equal(await pulumi.isSecret(g?.machineSecrets as pulumi.Output<unknown>), true);
  });

  it('reads a Git-managed cluster; no CoreDNS dependency unless one is named', () => {
    const values = withValue('deploy', {
      mode: 'kustomization',
      git: { repository: { name: 'fleet' }, path: './clusters/lab' },
    });
    const cfg = parseStackConfig(sourceOf(values));
    assert.deepEqual(cfg.deploy.git, {
      repository: { name: 'fleet', namespace: 'flux-system' },
      path: './clusters/lab',
    });
    assert.equal(cfg.deploy.coreDns, false);
  });

  it('reads an externally owned Talos config without any Talos secret or generation input', () => {
    const values = validValues();
    values.talos = { management: 'external', talosVersion: 'v1.12.11' };
    delete values.talosClientConfiguration;
    delete values.talosMachineSecrets;
    assert.deepEqual(parseStackConfig(sourceOf(values)).talos, {
      management: 'external',
      talosVersion: 'v1.12.11',
      keepLayers: 'staged',
      rebootTimeout: '20m',
      nodes: [],
    });
  });

  it('reads chart source credentials and cosign verification', () => {
    const values = withValue('chart', {
      version: '0.1.0',
      secretRef: 'ghcr-pull',
      verify: {
        matchOIDCIdentity: [
          {
            issuer: '^https://token.actions.githubusercontent.com$',
            subject: '^https://github.com/peili-dev/.*$',
          },
        ],
      },
    });
    const cfg = parseStackConfig(sourceOf(values));
    assert.equal(cfg.chart.secretRef, 'ghcr-pull');
    assert.deepEqual(cfg.chart.verify, {
      matchOIDCIdentity: [
        {
          issuer: '^https://token.actions.githubusercontent.com$',
          subject: '^https://github.com/peili-dev/.*$',
        },
      ],
    });
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
      name: 'a chart value the chart does not have (judged by values.schema.json)',
      values: withValue('values', { peili: { logLevl: 'debug' } }),
      message: 'peili:values.peili.logLevl: is not a value of the chart (mirror/chart/values.yaml)',
    },
    {
      name: 'a chart value of the wrong kind',
      values: withValue('values', { peili: { resolveTags: 'sometimes' } }),
      message: 'peili:values.peili.resolveTags: must be one of upstream-down, always, never',
    },
    {
      name: 'hostPort out of range',
      values: withValue('values', { service: { registry: { hostPort: 70000 } } }),
      message: 'peili:values.service.registry.hostPort: must be <= 65535',
    },
    {
      name: 'a value the stack sets itself',
      values: withValue('values', { fullnameOverride: 'x' }),
      message:
        'peili:values.fullnameOverride: is set by the stack (deploy.releaseName, talos.*); remove it here',
    },
    {
      name: 'a Kubernetes version left to the provider',
      values: withValue('talos.kubernetesVersion', undefined),
      message: 'peili:talos.kubernetesVersion: is required',
    },
    {
      name: 'an install disk left to the provider',
      values: withValue('talos.installDisk', undefined),
      message: 'peili:talos.installDisk: is required',
    },
    {
      name: 'generation inputs in external mode',
      values: (() => {
        const v = validValues();
        (v.talos as Record<string, unknown>).management = 'external';
        return v;
      })(),
      message: [
        "peili:talos.clusterEndpoint: is only used when talos.management is 'pulumi'",
        "peili:talos.kubernetesVersion: is only used when talos.management is 'pulumi'",
        "peili:talos.installImage: is only used when talos.management is 'pulumi'",
        "peili:talos.installDisk: is only used when talos.management is 'pulumi'",
      ].join('\n  '),
    },
    {
      name: 'a Talos without containerd 2',
      values: withValue('talos.talosVersion', 'v1.7.6'),
      message: "peili:talos.talosVersion: must be 1.8 or later (containerd 2; got 'v1.7.6')",
    },
    {
      name: 'a user patch that already writes the CRI customization file',
      values: withValue('talos.configPatches', [
        'machine:\n  files:\n    - path: /etc/cri/conf.d/20-customization.part\n',
      ]),
      message:
        "peili:talos.configPatches[0]: already writes /etc/cri/conf.d/20-customization.part: add 'discard_unpacked_layers = false' under [plugins.\"io.containerd.cri.v1.images\"] to it and remove it from Peili's side with talos.management: external",
    },
    {
      name: 'cosign verification without a key or identity',
      values: withValue('chart', { version: '0.1.0', verify: {} }),
      message: 'peili:chart.verify: needs secretRef (a cosign public key) or matchOIDCIdentity (keyless)',
    },
    {
      name: 'bad keep-layers rollout',
      values: withValue('talos.keepLayers', 'yolo'),
      message: 'peili:talos.keepLayers: must be one of staged, rolling-reboot, applied (got "yolo")',
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
        'peili:observability.alerts: needs values.serviceMonitor.enabled: true (the alerts use the scraped metrics)',
    },
  ];
  for (const c of cases) {
    it(`rejects ${c.name}`, () => {
      assert.equal(errorOf(c.values, c.secretKeys), `invalid stack configuration:\n  ${c.message}`);
    });
  }

  it('lists every problem at once', () => {
    const values = withValue('clusterName', undefined);
    values.values = { peili: { logLevel: 'loud' } };
    assert.equal(
      errorOf(values),
      'invalid stack configuration:\n  peili:clusterName: is required\n  peili:values.peili.logLevel: must be one of fatal, error, warn, info, debug, trace',
    );
  });
});
