// The chart's init container and cleanup hook, run for real: the rendered `peili configure` and
// `peili cleanup` command lines are executed (the CLI through tsx) against a scratch directory that
// stands in for the node's registry config path (the pod's `/host` mount). The hosts.toml files
// must point at `http://<node IP>:<hostPort>` for every mirrored registry, and cleanup must bring
// back exactly what the node had.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { REPO_ROOT, renderChart, type K8sObject } from './helm.js';
import { daemonNode } from '../../testbed/daemon-node.js';

interface Container {
  name: string;
  args?: string[];
}
interface Workload extends K8sObject {
  spec: { template: { spec: { initContainers?: Container[] } } };
}

const NODE_IP = '10.1.2.3';
const CLI = join(REPO_ROOT, 'mirror/src/cli.ts');
const EVERYTHING_FILE = new URL('./fixtures/everything-values.yaml', import.meta.url).pathname;

/** Runs the CLI with `args`; the host's `/host` mount is `root`. Resolves with exit code and output. */
function runCli(args: readonly string[], root: string): Promise<{ code: number; output: string }> {
  const mapped = args.map((arg) =>
    arg.replace('$(NODE_IP)', NODE_IP).replace(/^--config-path=\/host\//, `--config-path=${root}/host/`),
  );
  return new Promise((resolve) => {
    execFile(
      daemonNode().path,
      ['--import', 'tsx', CLI, ...mapped],
      { cwd: REPO_ROOT, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
          output: stdout + stderr,
        });
      },
    );
  });
}

function initArgs(objects: K8sObject[], kind: 'DaemonSet', name: string, container: string): string[] {
  const workload = objects.find((o) => o.kind === kind && o.metadata.name === name) as Workload | undefined;
  const found = workload?.spec.template.spec.initContainers?.find((c) => c.name === container);
  assert.ok(found?.args, `no init container ${container} in ${kind}/${name}`);
  return found.args;
}

const SEED =
  "server = 'https://registry-1.docker.io'\n[host.'https://mirror.example.com']\n  capabilities = ['pull']\n";

const cases = [
  {
    name: 'everything enabled (three registries, prepend existing, no tag resolution, containerd 1.7)',
    args: ['-f', EVERYTHING_FILE],
    fullname: 'mirror',
    configPath: '/var/lib/rancher/k3s/agent/etc/containerd/certs.d',
    folders: ['10.0.0.5:5000', 'docker.io', 'ghcr.io'],
    endpoint: `http://${NODE_IP}:30999`,
    host: { capabilities: ['pull'], dial_timeout: '300ms' },
    keepsExisting: true,
  },
  {
    name: 'Talos defaults (all registries, containerd 1.6 given explicitly)',
    args: [
      '-f',
      join(REPO_ROOT, 'mirror/chart/ci/talos-values.yaml'),
      '--set',
      'peili.containerdVersion=1.6.20',
    ],
    fullname: 'peili',
    configPath: '/etc/cri/conf.d/hosts',
    folders: ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io'],
    endpoint: `http://${NODE_IP}:29999`,
    host: { capabilities: ['pull', 'resolve'] },
    keepsExisting: false,
  },
] as const;

describe('chart: configure and cleanup command lines, run', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  for (const c of cases) {
    it(c.name, async () => {
      const root = mkdtempSync(join(tmpdir(), 'peili-node-'));
      dirs.push(root);
      const configPath = join(root, 'host', c.configPath);
      mkdirSync(join(configPath, 'docker.io'), { recursive: true });
      writeFileSync(join(configPath, 'docker.io/hosts.toml'), SEED);

      const objects = await renderChart(c.args);
      const configure = await runCli(initArgs(objects, 'DaemonSet', c.fullname, 'configure'), root);
      assert.equal(configure.code, 0, configure.output);

      const written = readdirSync(configPath)
        .filter((f) => !f.startsWith('_'))
        .sort();
      assert.deepEqual(written, c.folders);
      for (const folder of c.folders) {
        const toml = parseToml(readFileSync(join(configPath, folder, 'hosts.toml'), 'utf8')) as {
          host: Record<string, Record<string, unknown>>;
        };
        const hosts = Object.keys(toml.host);
        // The mirror comes first; the node's previous host follows only with prependExisting.
        assert.equal(hosts[0], c.endpoint, folder);
        // smol-toml builds null-prototype tables; compare their entries.
        assert.deepEqual({ ...toml.host[c.endpoint] }, c.host, folder);
        const expectedHosts =
          folder === 'docker.io' && c.keepsExisting
            ? [c.endpoint, 'https://mirror.example.com']
            : [c.endpoint];
        assert.deepEqual(hosts, expectedHosts, folder);
      }

      const cleanup = await runCli(initArgs(objects, 'DaemonSet', `${c.fullname}-cleanup`, 'cleanup'), root);
      assert.equal(cleanup.code, 0, cleanup.output);
      assert.deepEqual(readdirSync(configPath), ['docker.io']);
      assert.equal(readFileSync(join(configPath, 'docker.io/hosts.toml'), 'utf8'), SEED);
      assert.equal(existsSync(join(configPath, '_backup')), false);
    });
  }
});
