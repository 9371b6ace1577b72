// `peili configure` and `peili cleanup` against the test bed's real containerd (any version): the
// hosts.toml the CLI writes sends pulls to the mirror first (a 404 server here), which falls back
// to the registry. Also answers, on the real daemon, whether it tolerates a `dial_timeout` key
// (1.6 ignores it, 1.7+ use it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  buildImage,
  createCriClient,
  createScratchDir,
  IMAGES,
  pushImage,
  startContainerd,
  startRegistry,
  type ContainerdNode,
  type OciLayout,
  type RegistryProcess,
} from '../../testbed/index.js';
import { snapshotTree } from '../test-support/hosts-fixtures.js';
import { daemonNode } from '../../testbed/daemon-node.js';
import { supportsDialTimeout } from './hosts/containerd-version.js';

// This file's share of 127.0.4.0/24.
const REGISTRY_HOST = '127.0.4.1';
const MIRROR_HOST = '127.0.4.2';
const NODE_HOST = '127.0.4.3';

const here = dirname(fileURLToPath(import.meta.url));
let dir: string;
let registry: RegistryProcess;
let node: ContainerdNode;
let app: OciLayout;
let mirror: Server;
let mirrorUrl: string;
/** The version the daemon reports, as `configure` should detect it. */
let runtimeVersion: string;
const mirrorRequests: string[] = [];

before(async () => {
  dir = await createScratchDir('cli-int');
  app = await buildImage(IMAGES.app);
  registry = await startRegistry({ dir: join(dir, 'registry'), host: REGISTRY_HOST });
  await pushImage(app, `${registry.hostPort}/test/app:v1`);
  await pushImage(app, `${registry.hostPort}/test/app:v2`);
  mirror = createServer((req, res) => {
    mirrorRequests.push(`${req.method} ${req.url}`);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(req.method === 'HEAD' ? undefined : '{"errors":[{"code":"NOT_FOUND","message":"test mirror"}]}');
  });
  await new Promise<void>((resolve) => mirror.listen(0, MIRROR_HOST, resolve));
  mirrorUrl = `http://${MIRROR_HOST}:${(mirror.address() as AddressInfo).port}`;
  node = await startContainerd({ dir, name: 'n1', host: NODE_HOST });
  const cri = createCriClient(node.socket);
  runtimeVersion = (await cri.version()).runtimeVersion;
  cri.close();
});

after(async () => {
  await node?.stop();
  await registry?.stop();
  await new Promise((resolve) => (mirror ? mirror.close(resolve) : resolve(undefined)));
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function peili(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(daemonNode().path, ['--import', 'tsx', join(here, 'cli.ts'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function logs(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function pull(tag: string): Promise<void> {
  await node.ctr(
    ['images', 'pull', '--hosts-dir', node.registryConfigPath, `${registry.hostPort}/test/app:${tag}`],
    {
      timeoutMs: 60_000,
    },
  );
}

async function forget(tag: string): Promise<void> {
  // Remove the image and its content so that the next pull asks for everything again.
  await node.ctr(['images', 'rm', '--sync', `${registry.hostPort}/test/app:${tag}`]);
  const { stdout } = await node.ctr(['content', 'ls', '-q']);
  const digests = stdout.split('\n').filter((d) => d.startsWith('sha256:'));
  if (digests.length > 0) await node.ctr(['content', 'rm', ...digests]);
}

describe('peili configure/cleanup with a real containerd', { timeout: 300_000 }, () => {
  it('detects the version, mirror is tried first, falls back to the registry; cleanup restores the original', async () => {
    const configPath = node.registryConfigPath;
    await mkdir(join(configPath, 'example.com'), { recursive: true });
    await writeFile(
      join(configPath, 'example.com', 'hosts.toml'),
      'server = "https://example.com"\n\n[host]\n',
    );
    const original = await snapshotTree(configPath, { withTimes: true });

    const configured = await peili([
      'configure',
      `--config-path=${configPath}`,
      `--mirror-targets=${mirrorUrl}`,
      `--mirrored-registries=${registry.hostPort}`,
      `--containerd-sock=${node.socket}`,
    ]);
    assert.equal(configured.code, 0, configured.stdout + configured.stderr);
    const written = logs(configured.stdout);
    assert.deepEqual(
      written.map((l) => [l.msg, l.containerdVersion]),
      [
        ['containerd version detected', runtimeVersion],
        ['hosts.toml written', runtimeVersion],
      ],
    );
    const hosts = await readFile(join(configPath, registry.hostPort, 'hosts.toml'), 'utf8');
    assert.equal(
      hosts,
      `# Written by peili configure; \`peili cleanup\` restores the previous configuration.\nserver = "http://${registry.hostPort}"\n\n[host."${mirrorUrl}"]\ncapabilities = [ "pull", "resolve" ]\n${
        supportsDialTimeout(runtimeVersion) ? 'dial_timeout = "200ms"\n' : ''
      }`,
    );

    mirrorRequests.length = 0;
    await pull('v1');
    const ns = `ns=${encodeURIComponent(registry.hostPort)}`;
    const manifestDigest = app.manifestDigests[0]!;
    assert.equal(mirrorRequests[0], `HEAD /v2/test/app/manifests/v1?${ns}`);
    assert.ok(
      mirrorRequests.includes(`GET /v2/test/app/manifests/${manifestDigest}?${ns}`),
      mirrorRequests.join('\n'),
    );
    for (const digest of [app.images[0]!.configDigest, ...app.images[0]!.layerDigests]) {
      assert.ok(
        mirrorRequests.includes(`GET /v2/test/app/blobs/${digest}?${ns}`),
        `${digest} not asked of the mirror`,
      );
    }
    // Every request fell back to the registry, which served the image.
    const served = (await registry.requestLog()).filter((line) => line.includes('/test/app/'));
    assert.ok(
      served.some((line) => line.includes(`"HEAD /v2/test/app/manifests/v1`)),
      served.join('\n'),
    );
    const { stdout: images } = await node.ctr(['images', 'ls', '-q']);
    assert.ok(images.split('\n').includes(`${registry.hostPort}/test/app:v1`));

    const cleaned = await peili(['cleanup', `--config-path=${configPath}`]);
    assert.equal(cleaned.code, 0, cleaned.stdout + cleaned.stderr);
    assert.deepEqual(await snapshotTree(configPath, { withTimes: true }), original);
  });

  it('every containerd accepts a dial_timeout key (1.6 ignores it; the hosts.toml stays in use)', async () => {
    const configPath = node.registryConfigPath;
    const configured = await peili([
      'configure',
      `--config-path=${configPath}`,
      `--mirror-targets=${mirrorUrl}`,
      `--mirrored-registries=${registry.hostPort}`,
      '--containerd-version=1.7.0', // forces the key, even onto a 1.6 daemon
    ]);
    assert.equal(configured.code, 0, configured.stdout + configured.stderr);
    assert.match(
      await readFile(join(configPath, registry.hostPort, 'hosts.toml'), 'utf8'),
      /^dial_timeout = "200ms"$/m,
    );
    await forget('v1');
    mirrorRequests.length = 0;
    await pull('v2');
    // Had containerd rejected the file, it would have used the registry's default host only and
    // the mirror would have seen nothing.
    assert.equal(
      mirrorRequests[0],
      `HEAD /v2/test/app/manifests/v2?ns=${encodeURIComponent(registry.hostPort)}`,
    );
    const log = await readFile(node.logPath, 'utf8');
    assert.doesNotMatch(log, /failed to decode hosts\.toml/);
    assert.equal((await peili(['cleanup', `--config-path=${configPath}`])).code, 0);
  });
});
