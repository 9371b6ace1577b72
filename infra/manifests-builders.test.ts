import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildHelmRelease,
  buildKustomization,
  buildOciRepository,
  HELM_CHART_LAYER,
  type FluxReleaseSpec,
} from './manifests.js';
import { buildMirrorValues } from './mirror-values.js';
import { parseStackConfig } from './config.js';
import { sourceOf, validValues } from './test-fixtures.js';

const spec: FluxReleaseSpec = {
  namespace: 'peili',
  releaseName: 'peili',
  chartUrl: 'oci://ghcr.io/peili-dev/charts/peili',
  chartVersion: '0.1.0',
  chartInterval: '10m',
  interval: '5m',
  coreDns: { name: 'coredns', namespace: 'kube-system' },
  values: buildMirrorValues({}, { releaseName: 'peili', talosRegistries: true }),
};

describe('Flux object builders', () => {
  it('pull only the chart layer of the OCI artifact, at the chart version', () => {
    assert.deepEqual(buildOciRepository(spec).spec, {
      url: 'oci://ghcr.io/peili-dev/charts/peili',
      ref: { tag: '0.1.0' },
      interval: '10m',
      layerSelector: { mediaType: HELM_CHART_LAYER, operation: 'copy' },
    });
  });

  it('wait for CoreDNS, unless the stack says CoreDNS is not a Flux object', () => {
    assert.deepEqual(buildHelmRelease(spec).spec?.dependsOn, [{ name: 'coredns', namespace: 'kube-system' }]);
    assert.equal('dependsOn' in (buildHelmRelease({ ...spec, coreDns: false }).spec ?? {}), false);
    const k = {
      namespace: 'peili',
      releaseName: 'peili',
      interval: '5m',
      repository: { name: 'fleet', namespace: 'flux-system' },
      path: './p',
    };
    assert.deepEqual(
      buildKustomization({ ...k, coreDns: { name: 'coredns', namespace: 'flux-system' } }).spec?.dependsOn,
      [{ name: 'coredns', namespace: 'flux-system' }],
    );
    assert.equal('dependsOn' in (buildKustomization({ ...k, coreDns: false }).spec ?? {}), false);
  });

  it('accept `coreDns: false` in the stack config', () => {
    const values = { ...validValues(), deploy: { coreDns: false } };
    assert.equal(parseStackConfig(sourceOf(values)).deploy.coreDns, false);
  });

  it('add the chart registry secret and cosign verification only when asked', () => {
    const src = buildOciRepository({
      ...spec,
      chartSecretRef: 'ghcr-pull',
      chartVerify: { secretRef: 'cosign-pub' },
    }).spec;
    assert.deepEqual(src?.secretRef, { name: 'ghcr-pull' });
    assert.deepEqual(src?.verify, { provider: 'cosign', secretRef: { name: 'cosign-pub' } });
    const keyless = buildOciRepository({
      ...spec,
      chartVerify: {
        matchOIDCIdentity: [
          {
            issuer: '^https://token.actions.githubusercontent.com$',
            subject: '^https://github.com/peili-dev/',
          },
        ],
      },
    }).spec?.verify;
    assert.deepEqual(keyless, {
      provider: 'cosign',
      matchOIDCIdentity: [
        {
          issuer: '^https://token.actions.githubusercontent.com$',
          subject: '^https://github.com/peili-dev/',
        },
      ],
    });
  });

  it('label the Flux source and release without managed-by: pulumi (Git copies are applied by Flux)', () => {
    for (const o of [buildOciRepository(spec), buildHelmRelease(spec)])
      assert.deepEqual(o.metadata?.labels, {
        'app.kubernetes.io/name': 'peili',
        'app.kubernetes.io/instance': 'peili',
      });
  });

  it('put the Kustomization beside its GitRepository: no cross-namespace source, nothing to substitute', () => {
    const k = buildKustomization({
      namespace: 'peili',
      releaseName: 'peili',
      interval: '5m',
      coreDns: false,
      repository: { name: 'fleet', namespace: 'flux-system' },
      path: './p',
    });
    assert.equal(k.metadata?.namespace, 'flux-system');
    assert.deepEqual(k.spec?.sourceRef, { kind: 'GitRepository', name: 'fleet' });
    assert.equal('postBuild' in (k.spec ?? {}), false);
  });
});
