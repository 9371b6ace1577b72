// Private images on the real test bed: an upstream docker-registry with htpasswd (basic) auth,
// listed in `--private-registries`, two containerd nodes with Peili daemons (peer secret on).
// containerd (ctr with credentials, through the hosts.toml `peili configure` wrote) pulls through
// the mirror after answering its 401 challenge; the second node gets the layers from the first;
// a pull without credentials, wrong credentials, a lying `ns`, a missing `ns` and an unsigned peer
// request all get nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  buildImage,
  CRI_PROTO_PATH,
  createScratchDir,
  freePort,
  pushArgs,
  REPO_ROOT,
  startCluster,
  startProcess,
  waitFor,
  type Cluster,
  type ManagedProcess,
  type OciLayout,
} from '../testbed/index.js';
import { PEILI_PORTS, registryCommand, runPeili, sumMetric, parseMetrics } from './peili-cluster.js';
import { daemonNode } from '../testbed/daemon-node.js';

const run = promisify(execFile);
const USER = 'puller';
const PASSWORD = 'correct horse battery';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const WRONG = `Basic ${Buffer.from(`${USER}:wrong`).toString('base64')}`;
const HOSTS = ['127.0.46.2', '127.0.46.3'];

let dir: string;
let cluster: Cluster;
let registry: ManagedProcess | undefined;
let upstream: string; // host:port of the authenticated registry
const daemons: ManagedProcess[] = [];
let image: OciLayout;

/** htpasswd line with a bcrypt hash (docker-registry accepts only bcrypt), made by libxcrypt via Python. */
async function htpasswd(user: string, password: string): Promise<string> {
  const script =
    'import crypt,sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))';
  const { stdout } = await run('python3', ['-W', 'ignore', '-c', script, user, password]);
  return stdout.trim();
}

before(async () => {
  dir = await createScratchDir('e2e-private');
  cluster = await startCluster({ nodes: 2, dir, registryHost: '127.0.46.1', nodeHosts: HOSTS });
  // The private upstream: a second registry with basic auth.
  const regDir = join(dir, 'private-registry');
  await mkdir(join(regDir, 'data'), { recursive: true });
  await writeFile(join(regDir, 'htpasswd'), `${await htpasswd(USER, PASSWORD)}\n`);
  const port = await freePort('127.0.46.1');
  upstream = `127.0.46.1:${port}`;
  await writeFile(
    join(regDir, 'config.yml'),
    JSON.stringify({
      version: 0.1,
      log: { level: 'info', accesslog: { disabled: false } },
      storage: { filesystem: { rootdirectory: join(regDir, 'data') }, delete: { enabled: true } },
      http: { addr: upstream },
      auth: { htpasswd: { realm: 'peili-private', path: join(regDir, 'htpasswd') } },
    }),
  );
  registry = await startProcess('docker-registry', ['serve', join(regDir, 'config.yml')], {
    logPath: join(regDir, 'registry.log'),
  });
  await waitFor(async () => (await fetch(`http://${upstream}/v2/`).catch(() => undefined))?.status === 401, {
    timeoutMs: 15_000,
    intervalMs: 100,
    describe: () => 'private registry never answered 401',
  });
  image = await buildImage({
    name: 'private-app',
    layers: [
      { files: [{ path: '/secret.bin', size: 300 * 1024 }] },
      { files: [{ path: '/etc/x', content: 'x\n' }] },
    ],
  });
  const args = pushArgs(image, `${upstream}/org/private:v1`);
  await run('skopeo', [args[0]!, `--dest-creds=${USER}:${PASSWORD}`, ...args.slice(1)], { timeout: 120_000 });

  const secretFile = join(dir, 'peer-secret');
  await writeFile(secretFile, 'a shared secret for the private test', { mode: 0o600 });
  const members = HOSTS.map((h) => `${h}:${PEILI_PORTS.router}`).join(',');
  for (const node of cluster.nodes) {
    const logPath = join(dir, `peili-${node.name}.log`);
    await runPeili(
      [
        'configure',
        `--config-path=${node.registryConfigPath}`,
        `--mirror-targets=http://${node.host}:${PEILI_PORTS.registry}`,
        `--mirrored-registries=${upstream}`,
        `--containerd-sock=${node.socket}`,
      ],
      logPath,
    );
    const daemon = await startProcess(
      daemonNode().path,
      registryCommand({
        node,
        members,
        upstreamHost: upstream,
        logLevel: 'debug',
        secretFile,
        registryArgs: [
          // docker.io is mirrored too, so a request naming it reaches the content filter.
          `--mirrored-registries=${upstream},docker.io`,
          `--private-registries=${upstream}`,
        ],
      }),
      { logPath, cwd: REPO_ROOT },
    );
    daemons.push(daemon);
    await waitFor(
      async () =>
        (await fetch(`http://${node.host}:${PEILI_PORTS.metrics}/readyz`).catch(() => undefined))?.status ===
        200,
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        describe: () => `peili on ${node.name} never ready (${logPath})`,
      },
    );
  }
});

after(async () => {
  await Promise.allSettled(daemons.map((d) => d.stop({ timeoutMs: 10_000 })));
  await registry?.stop();
  await cluster?.stop();
  if (dir && !process.env.PEILI_E2E_KEEP) await rm(dir, { recursive: true, force: true });
});

const mirror = (i: number): string => `http://${HOSTS[i]}:${PEILI_PORTS.registry}`;
const ns = (): string => `ns=${encodeURIComponent(upstream)}`;

/** `ctr images pull` on node `i` through its hosts.toml, with credentials or without. */
async function ctrPull(i: number, user?: string): Promise<void> {
  const node = cluster.nodes[i]!;
  await node.ctr(
    [
      'images',
      'pull',
      '--hosts-dir',
      node.registryConfigPath,
      ...(user ? ['--user', user] : []),
      `${upstream}/org/private:v1`,
    ],
    { timeoutMs: 60_000 },
  );
}

async function servedBytes(i: number, source: string): Promise<number> {
  const text = await (await fetch(`http://${HOSTS[i]}:${PEILI_PORTS.metrics}/metrics`)).text();
  return sumMetric(parseMetrics(text), 'peili_served_bytes_total', { source });
}

test('node 1 pulls with credentials through the mirror (401 challenge answered, then upstream)', async () => {
  await ctrPull(0, `${USER}:${PASSWORD}`);
  const layer = image.images[0]!.layerDigests[0]!;
  // The mirror answers node 1's own containerd from the local store now, for proven credentials.
  await waitFor(
    async () =>
      (
        await fetch(`${mirror(0)}/v2/org/private/blobs/${layer}?${ns()}`, {
          method: 'HEAD',
          headers: { authorization: BASIC },
        })
      ).status === 200,
    { timeoutMs: 10_000, intervalMs: 200, describe: () => 'node 1 never served its own private layer' },
  );
});

test('anonymous requests get the upstream challenge; wrong credentials, lying or missing ns get nothing', async () => {
  const layer = image.images[0]!.layerDigests[0]!;
  const upstreamChallenge = (
    await fetch(`http://${upstream}/v2/org/private/blobs/${layer}`, { method: 'HEAD' })
  ).headers.get('www-authenticate');
  assert.equal(upstreamChallenge, 'Basic realm="peili-private"');
  const cases: {
    name: string;
    url: string;
    headers?: Record<string, string>;
    status: number;
    challenge?: string;
  }[] = [
    {
      name: 'anonymous',
      url: `${mirror(0)}/v2/org/private/blobs/${layer}?${ns()}`,
      status: 401,
      challenge: upstreamChallenge,
    },
    {
      name: 'anonymous manifest by tag',
      url: `${mirror(0)}/v2/org/private/manifests/v1?${ns()}`,
      status: 401,
      challenge: upstreamChallenge,
    },
    {
      name: 'wrong password',
      url: `${mirror(0)}/v2/org/private/blobs/${layer}?${ns()}`,
      headers: { authorization: WRONG },
      status: 404,
    },
    {
      name: 'public ns for a private digest',
      url: `${mirror(0)}/v2/library/x/blobs/${layer}?ns=docker.io`,
      status: 404,
    },
    { name: 'no ns', url: `${mirror(0)}/v2/org/private/blobs/${layer}`, status: 404 },
    {
      name: 'asked at node 2 under a public ns',
      url: `${mirror(1)}/v2/library/x/blobs/${layer}?ns=docker.io`,
      status: 404,
    },
    {
      name: 'unsigned peer request',
      url: `${mirror(0)}/v2/org/private/blobs/${layer}?${ns()}`,
      headers: { 'x-peili-mirrored': 'true' },
      status: 401,
    },
    {
      name: 'unsigned peer request under a public ns',
      url: `${mirror(0)}/v2/library/x/blobs/${layer}?ns=docker.io`,
      headers: { 'x-peili-mirrored': 'true' },
      status: 401,
    },
  ];
  for (const c of cases) {
    const response = await fetch(c.url, { headers: c.headers ?? {}, signal: AbortSignal.timeout(10_000) });
    const body = await response.text();
    assert.equal(response.status, c.status, `${c.name}: ${body}`);
    if (c.challenge !== undefined)
      assert.equal(response.headers.get('www-authenticate'), c.challenge, c.name);
    assert.ok(!body.includes('secret.bin'), c.name);
  }
});

test('node 2 cannot pull without credentials, and pulls from node 1 with them', async () => {
  await assert.rejects(ctrPull(1), /401|unauthorized|authorization/i);
  const fromPeerBefore = await servedBytes(1, 'peer');
  await ctrPull(1, `${USER}:${PASSWORD}`);
  const fromPeer = (await servedBytes(1, 'peer')) - fromPeerBefore;
  console.log(`private image on node 2: ${fromPeer} bytes served from node 1 after the credential check`);
  assert.ok(fromPeer >= 300 * 1024, `only ${fromPeer} bytes came from the peer`);
});

/** CRI PullImage with an AuthConfig, as the kubelet sends it (the test bed's client sends none). */
async function criPullWithAuth(socket: string, ref: string, auth: Record<string, string>): Promise<string> {
  const definition = protoLoader.loadSync(CRI_PROTO_PATH, { keepCase: true, defaults: true });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: {
      v1: { ImageService: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client };
    };
  };
  const client = new root.runtime.v1.ImageService(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) => {
      const pull = (client as unknown as Record<string, (...args: unknown[]) => unknown>)['PullImage']!;
      pull.call(
        client,
        { image: { image: ref }, auth },
        new grpc.Metadata(),
        { deadline: Date.now() + 60_000 },
        (error: grpc.ServiceError | null, reply?: { image_ref: string }) =>
          error ? reject(new Error(error.details)) : resolve(reply!.image_ref),
      );
    });
  } finally {
    client.close();
  }
}

test('CRI PullImage with credentials: served by peers only when the kubelet sends no server_address', async () => {
  const node = cluster.nodes[1]!;
  const ref = `${upstream}/org/private:v1`;
  const results: string[] = [];
  for (const serverAddress of [`http://${upstream}`, '']) {
    // Every ref CRI made (tag, repo@digest, config id), then the blobs themselves.
    const config = image.images[0]!.configDigest;
    const byDigest = `${upstream}/org/private@${image.topDigest}`;
    for (const name of [ref, byDigest, config]) await node.ctr(['images', 'rm', name]).catch(() => undefined);
    for (const digest of image.images[0]!.layerDigests)
      await node.ctr(['content', 'rm', digest]).catch(() => undefined);
    const before = await servedBytes(1, 'peer');
    const auth = {
      username: USER,
      password: PASSWORD,
      ...(serverAddress ? { server_address: serverAddress } : {}),
    };
    assert.equal(await criPullWithAuth(node.socket, ref, auth), image.images[0]!.configDigest);
    const fromPeer = (await servedBytes(1, 'peer')) - before;
    results.push(`server_address=${serverAddress || '(none)'}: ${fromPeer} bytes from the peer`);
    if (serverAddress === '') assert.ok(fromPeer > 0, results.join('; '));
  }
  console.log(`CRI pulls of the private image on node 2: ${results.join('; ')}`);
});
