import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mergeValues, validateChartValues } from './chart-values.js';
import { buildMirrorValues, hostPortOf, mirroredRegistries, nodeRegistryEndpoint } from './mirror-values.js';

describe('mirror values', () => {
  it('carry only what the user set, plus the release name (no chart defaults copied)', () => {
    const user = { peili: { resolveTags: 'never' }, imagePullSecrets: [{ name: 'regcred' }] };
    assert.deepEqual(buildMirrorValues(user, { releaseName: 'peili', talosRegistries: false }), {
      peili: { resolveTags: 'never' },
      imagePullSecrets: [{ name: 'regcred' }],
      fullnameOverride: 'peili',
    });
  });

  it('on Talos, turn the pod-written hosts.toml off and pin the port and registries the patch uses', () => {
    const user = { peili: { mirroredRegistries: ['docker.io'] }, service: { registry: { port: 5001 } } };
    assert.deepEqual(buildMirrorValues(user, { releaseName: 'p', talosRegistries: true }), {
      peili: { mirroredRegistries: ['docker.io'], configureHosts: false },
      service: { registry: { port: 5001, hostPort: 29999 } },
      fullnameOverride: 'p',
    });
  });

  it('read the effective port and registries: the user value, else the chart default', () => {
    assert.equal(hostPortOf({}), 29999);
    assert.equal(hostPortOf({ service: { registry: { hostPort: 31000 } } }), 31000);
    assert.deepEqual(mirroredRegistries({}), []);
    assert.deepEqual(mirroredRegistries({ peili: { mirroredRegistries: ['quay.io'] } }), ['quay.io']);
  });

  it('merge as Helm does: maps by key, lists replaced, null removes', () => {
    assert.deepEqual(mergeValues({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: null }), {
      a: { b: 1, c: [3] },
    });
  });

  it('are judged by the chart schema after merging over the chart defaults', () => {
    assert.deepEqual(validateChartValues({ image: { digest: `sha256:${'a'.repeat(64)}` } }), []);
    assert.deepEqual(validateChartValues({ peili: { lookupTimeout: 20 } }), [
      { path: 'peili.lookupTimeout', message: 'must be string' },
    ]);
  });

  it('format the node endpoint containerd uses, IPv6 in brackets', () => {
    assert.equal(nodeRegistryEndpoint('10.0.0.5', 29999), 'http://10.0.0.5:29999');
    assert.equal(nodeRegistryEndpoint('fd00::5', 29999), 'http://[fd00::5]:29999');
    assert.equal(nodeRegistryEndpoint('node-1.lan', 80), 'http://node-1.lan:80');
  });
});
