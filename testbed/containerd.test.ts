import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  containerdPaths,
  keepLayersPart,
  renderContainerdConfig,
  renderContainerdConfigV3,
  testbedCriPart,
} from './containerd.js';
import { mergeCriParts, talosBasePart } from './talos-cri.js';

describe('containerdPaths', () => {
  it('keeps everything of a node under its directory, certs.d by default', () => {
    assert.deepEqual(containerdPaths('/s/n1'), {
      root: '/s/n1/root',
      state: '/s/n1/state',
      socket: '/s/n1/containerd.sock',
      ttrpcSocket: '/s/n1/containerd.sock.ttrpc',
      debugSocket: '/s/n1/debug.sock',
      opt: '/s/n1/opt',
      cniBin: '/s/n1/cni/bin',
      cniConf: '/s/n1/cni/conf',
      registryConfigPath: '/s/n1/certs.d',
      criConfig: '/s/n1/cri/conf.d/cri.toml',
      criConfd: '/s/n1/cri/conf.d',
    });
    assert.equal(
      containerdPaths('/s/n1', '/etc/cri/conf.d/hosts').registryConfigPath,
      '/etc/cri/conf.d/hosts',
    );
  });
});

describe('renderContainerdConfig', () => {
  it('renders the TESTBED.md config with the node paths, snapshotter and stream address', () => {
    const toml = renderContainerdConfig(containerdPaths('/s/n1'), {
      snapshotter: 'native',
      host: '127.0.1.2',
      sandboxImage: 'x/pause:1',
    });
    assert.equal(
      toml,
      [
        'version = 2',
        'root = "/s/n1/root"',
        'state = "/s/n1/state"',
        'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
        '',
        '[grpc]',
        '  address = "/s/n1/containerd.sock"',
        '[ttrpc]',
        '  address = "/s/n1/containerd.sock.ttrpc"',
        '[debug]',
        '  address = "/s/n1/debug.sock"',
        '  level = "debug"',
        '[plugins."io.containerd.internal.v1.opt"]',
        '  path = "/s/n1/opt"',
        '[plugins."io.containerd.grpc.v1.cri"]',
        '  sandbox_image = "x/pause:1"',
        '  stream_server_address = "127.0.1.2"',
        '  stream_server_port = "0"',
        '  [plugins."io.containerd.grpc.v1.cri".containerd]',
        '    snapshotter = "native"',
        '    discard_unpacked_layers = false',
        '  [plugins."io.containerd.grpc.v1.cri".cni]',
        '    bin_dir = "/s/n1/cni/bin"',
        '    conf_dir = "/s/n1/cni/conf"',
        '  [plugins."io.containerd.grpc.v1.cri".registry]',
        '    config_path = "/s/n1/certs.d"',
        '',
      ].join('\n'),
    );
  });
});

describe('containerd 2.x node config (Talos-shaped)', () => {
  it('a version-3 main config with the node paths that imports the merged CRI config', () => {
    const toml = renderContainerdConfigV3(containerdPaths('/s/n1'));
    assert.match(toml, /^version = 3$/m);
    assert.match(toml, /^imports = \["\/s\/n1\/cri\/conf\.d\/cri\.toml"\]$/m);
    assert.match(toml, /^root = "\/s\/n1\/root"$/m);
    assert.match(toml, /^ {2}address = "\/s\/n1\/containerd\.sock"$/m);
  });

  it('the bed part carries the snapshotter, sandbox image, CNI dirs and stream address', () => {
    const part = testbedCriPart(containerdPaths('/s/n1'), {
      snapshotter: 'native',
      host: '127.0.1.2',
      sandboxImage: 'x/p:1',
    });
    assert.equal(part.name, '10-testbed.part');
    const merged = mergeCriParts([talosBasePart(), part, keepLayersPart()]);
    assert.match(merged, /snapshotter = "native"/);
    assert.match(merged, /sandbox = "x\/p:1"/);
    assert.match(merged, /bin_dirs = \[ "\/s\/n1\/cni\/bin" \]/);
    assert.match(merged, /stream_server_address = "127\.0\.1\.2"/);
    assert.match(merged, /discard_unpacked_layers = false/);
  });
});
