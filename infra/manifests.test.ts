import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { validateChartValues, type ChartValues } from './chart-values.js';
import { parse } from 'yaml';
import { loadStackConfig } from './config.js';
import { fieldErrors, helmReleaseRules, validateSchema } from './k8s-validation.js';
import { runUnderMocks } from './mock-engine.js';
import { createPeiliStack } from './program.js';
import { renderStack } from './render.js';
import { helmReleases, kubernetesObjects, type KubeObject } from './rendered.js';
import { loadStackFile, REPO_ROOT } from './stack-files.js';
import { mockConfig, validValues } from './test-fixtures.js';

const program = () => createPeiliStack(loadStackConfig());

describe('every Kubernetes object the program creates', () => {
  const objects: { source: string; obj: KubeObject }[] = [];
  const chartValues: { source: string; values: unknown }[] = [];

  before(async () => {
    const bootValues = {
      ...validValues(),
      deploy: { mode: 'bootstrap' },
      values: {
        serviceMonitor: { enabled: true },
        grafanaDashboard: { enabled: true, mode: 'operator' },
        imagePullSecrets: [{ name: 'regcred' }],
      },
      observability: { alerts: true },
    };
    const verifiedValues = {
      ...validValues(),
      chart: {
        version: '0.1.0',
        secretRef: 'ghcr-pull',
        verify: {
          matchOIDCIdentity: [
            {
              issuer: '^https://token.actions.githubusercontent.com$',
              subject: '^https://github.com/peili-dev/',
            },
          ],
        },
      },
    };
    for (const [source, config] of [
      ['infra', loadStackFile('infra')],
      ['apps', loadStackFile('apps')],
      ['bootstrap', mockConfig(bootValues)],
      ['verified', mockConfig(verifiedValues)],
    ] as const) {
      const run = await runUnderMocks(program, config, { stack: source });
      for (const obj of kubernetesObjects(run)) {
        objects.push({ source, obj });
        if (obj.kind === 'HelmRelease')
          chartValues.push({ source, values: (obj.spec as { values: unknown }).values });
      }
      for (const release of helmReleases(run))
        chartValues.push({ source: `${source} helm`, values: release.values });
    }
    // The Git manifests the apps render asks the user to commit.
    const files = await renderStack('apps');
    for (const [name, content] of files) {
      if (!name.startsWith('git/') || name.endsWith('kustomization.yaml')) continue;
      const obj = parse(content) as KubeObject;
      objects.push({ source: `apps ${name}`, obj });
      if (obj.kind === 'HelmRelease')
        chartValues.push({ source: `apps ${name}`, values: (obj.spec as { values: unknown }).values });
    }
  });

  it('covers every kind the program can create', () => {
    const kinds = new Set(objects.map((o) => `${o.obj.apiVersion}/${o.obj.kind}`));
    assert.deepEqual([...kinds].sort(), [
      'helm.toolkit.fluxcd.io/v2/HelmRelease',
      'kustomize.toolkit.fluxcd.io/v1/Kustomization',
      'monitoring.coreos.com/v1/PrometheusRule',
      'source.toolkit.fluxcd.io/v1/OCIRepository',
      'v1/ConfigMap',
      'v1/Namespace',
    ]);
    assert.deepEqual(
      chartValues.map((v) => v.source),
      ['infra', 'bootstrap helm', 'verified', 'apps git/helmrelease-peili-peili.yaml'],
    );
  });

  it('passes its kubernetes-models schema', async () => {
    for (const { source, obj } of objects) {
      await assert.doesNotReject(validateSchema(obj), `${source}: ${obj.kind} ${obj.metadata.name}`);
    }
  });

  it('has no unknown or mistyped field', () => {
    assert.deepEqual(fieldErrors(objects.map((o) => o.obj)), []);
  });

  it('gives every HelmRelease exactly one chart source', () => {
    assert.deepEqual(
      objects.flatMap((o) => helmReleaseRules(o.obj)),
      [],
    );
  });

  it('gives the chart values its values.schema.json accepts (merged over the defaults, as Helm does)', () => {
    for (const { source, values } of chartValues) {
      assert.deepEqual(validateChartValues(values as ChartValues), [], source);
    }
  });
});

describe('the checks themselves', () => {
  const release: KubeObject = {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: { name: 'peili', namespace: 'peili' },
    spec: { interval: '10m', chartRef: { kind: 'OCIRepository', name: 'peili' }, values: { anything: true } },
  };

  it('report an unknown field at any depth, but not inside free-form values', () => {
    const bad = {
      ...release,
      spec: { ...(release.spec as object), install: { remediation: { retrys: 3 } } },
    } as KubeObject;
    const errors = fieldErrors([release, bad]);
    assert.equal(errors.length, 1);
    assert.match(
      errors[0] ?? '',
      /^HelmRelease peili\/peili: Object literal may only specify known properties, and '"?retrys"?' does not exist/,
    );
  });

  it('report a HelmRelease with both or neither chart source', () => {
    const both = {
      ...release,
      spec: { ...(release.spec as object), chart: { spec: { chart: 'peili' } } },
    } as KubeObject;
    const neither = { ...release, spec: { interval: '10m' } } as KubeObject;
    assert.deepEqual(helmReleaseRules(both), [
      'HelmRelease peili: needs exactly one of chart/chartRef (has 2)',
    ]);
    assert.deepEqual(helmReleaseRules(neither), [
      'HelmRelease peili: needs exactly one of chart/chartRef (has 0)',
    ]);
  });

  it('report a schema violation', async () => {
    const noUrl = {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'OCIRepository',
      metadata: { name: 'x' },
      spec: { interval: '1m' },
    } as KubeObject;
    await assert.rejects(validateSchema(noUrl), /url/);
  });

  it('reject chart values the chart does not know', () => {
    const schema = JSON.parse(
      readFileSync(join(REPO_ROOT, 'mirror/chart/values.schema.json'), 'utf8'),
    ) as object;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    assert.equal(validate({ peili: { resolveTags: 'sometimes' } }), false);
    assert.equal(validate({ notAKey: 1 }), false);
  });
});
