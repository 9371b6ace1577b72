import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containerdPaths, renderContainerdConfig } from './containerd.js';

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
