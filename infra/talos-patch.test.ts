import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseToml } from 'smol-toml';
import { parse } from 'yaml';
import { buildTalosPatch, CRI_CUSTOMIZATION_PATH, criCustomizationToml } from './talos-patch.js';
import { buildMirrorValues, TALOS_REGISTRY_CONFIG_PATH } from './mirror-values.js';

describe('Talos containerd patch', () => {
  it('adds exactly one CRI drop-in file and nothing else to the machine config', () => {
    const patch = parse(buildTalosPatch()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(patch), ['machine']);
    assert.deepEqual(patch.machine, {
      files: [
        { op: 'create', path: '/etc/cri/conf.d/20-customization.part', content: criCustomizationToml() },
      ],
    });
    assert.equal(CRI_CUSTOMIZATION_PATH, '/etc/cri/conf.d/20-customization.part');
  });

  it('keeps unpacked layers under the containerd 2 key and the registry config path at Talos hosts', () => {
    // smol-toml returns null-prototype tables; a JSON round trip makes them plain for deepEqual.
    const toml: unknown = JSON.parse(JSON.stringify(parseToml(criCustomizationToml())));
    assert.deepEqual(toml, {
      plugins: {
        'io.containerd.cri.v1.images': {
          discard_unpacked_layers: false,
          registry: { config_path: '/etc/cri/conf.d/hosts' },
        },
      },
    });
    // The containerd 1.x key is silently ignored by containerd 2: it must not be what we rely on.
    assert.equal(criCustomizationToml().includes('io.containerd.grpc.v1.cri'), false);
  });

  it('points containerd at the same folder the chart writes hosts.toml into', () => {
    const values = buildMirrorValues({ releaseName: 'peili' });
    assert.equal(values.peili.containerdRegistryConfigPath, TALOS_REGISTRY_CONFIG_PATH);
    const toml = parseToml(criCustomizationToml()) as {
      plugins: Record<string, { registry: { config_path: string } }>;
    };
    assert.equal(
      toml.plugins['io.containerd.cri.v1.images']?.registry.config_path,
      values.peili.containerdRegistryConfigPath,
    );
  });
});
