// A Kubernetes cluster on loopback for the real-engine test: etcd, kube-apiserver,
// kube-controller-manager (DaemonSet, Job and garbage-collector controllers), kube-scheduler
// (DaemonSet pods are bound by the scheduler), kwok simulating the nodes (it makes pods Ready and
// Job pods Succeeded; no container runs), Flux's CRDs and its source- and helm-controller, all
// real programs built by scripts/build-counterparts.sh, started and stopped here.
//
// Addresses: 127.0.66.0/24 is this cluster's (no other test bed part uses it), one address per
// program. The chart registry is the exception, see startKubeTestbed.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { startProcess, waitFor, type ManagedProcess } from '../process.js';
import { freePort, tailFile } from '../scratch.js';
import { counterparts, goModCache, type Counterparts } from './counterparts.js';
import { ensureKubectl } from './tools.js';

const run = promisify(execFile);

/** The loopback network of this cluster. */
export const KUBE_NET = '127.0.66';
const HOST = {
  etcd: `${KUBE_NET}.1`,
  apiserver: `${KUBE_NET}.2`,
  sourceController: `${KUBE_NET}.4`,
  helmController: `${KUBE_NET}.5`,
  kwok: `${KUBE_NET}.6`,
  controllerManager: `${KUBE_NET}.7`,
  scheduler: `${KUBE_NET}.8`,
} as const;

/** A simulated node. */
export interface NodeSpec {
  readonly name: string;
  readonly role: 'controlplane' | 'worker';
}

/** Three nodes, labelled and tainted as Talos labels and taints them. */
export const TALOS_LIKE_NODES: readonly NodeSpec[] = [
  { name: 'talos-cp-1', role: 'controlplane' },
  { name: 'talos-worker-1', role: 'worker' },
  { name: 'talos-worker-2', role: 'worker' },
];

/** The Node object of a simulated node: Talos's labels and control-plane taint, kwok's annotation. */
export function nodeObject(spec: NodeSpec, index: number): Record<string, unknown> {
  const cp = spec.role === 'controlplane';
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/os': 'linux',
        'kubernetes.io/hostname': spec.name,
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        ...(cp
          ? {
              'node-role.kubernetes.io/control-plane': '',
              'node.kubernetes.io/exclude-from-external-load-balancers': '',
            }
          : {}),
        type: 'kwok',
      },
    },
    spec: {
      podCIDR: `10.244.${index}.0/24`,
      ...(cp ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } : {}),
    },
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
      capacity: { cpu: '4', memory: '8Gi', pods: '110' },
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        osImage: 'Talos (simulated by kwok)',
        containerRuntimeVersion: 'containerd://2.1.5',
        kubeletVersion: 'fake',
      },
    },
  };
}

/** A running cluster. */
export interface KubeCluster {
  /** Scratch directory (logs under `logs/`). */
  readonly dir: string;
  readonly kubeconfigPath: string;
  /** The admin kubeconfig (static token, the apiserver's own self-signed CA). */
  readonly kubeconfig: string;
  readonly server: string;
  readonly nodes: readonly NodeSpec[];
  readonly bins: Counterparts;
  /** Runs kubectl against the cluster and returns stdout. */
  kubectl(args: readonly string[]): Promise<string>;
  /** Parsed `kubectl get -o json`. */
  getJson(args: readonly string[]): Promise<Record<string, unknown>>;
  /** Stops every program (reverse start order). */
  stop(): Promise<void>;
}

/** The Flux CRDs, read from the module cache of the pinned controllers. */
export function fluxCrdFiles(bins: Counterparts, env: NodeJS.ProcessEnv = process.env): string[] {
  const mod = goModCache(env);
  const dirs = [
    join(
      mod,
      `github.com/fluxcd/source-controller@v${bins.pins.FLUX_SOURCE_CONTROLLER_VERSION}/config/crd/bases`,
    ),
    join(
      mod,
      `github.com/fluxcd/helm-controller@v${bins.pins.FLUX_HELM_CONTROLLER_VERSION}/config/crd/bases`,
    ),
  ];
  return dirs.flatMap((d) => {
    if (!existsSync(d)) throw new Error(`${d} missing: run bash scripts/build-counterparts.sh`);
    return readdirSync(d)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join(d, f));
  });
}

/** kwok's stock stages (node ready + heartbeat, pod ready/complete/delete) from the module cache. */
export function kwokStageFiles(bins: Counterparts, env: NodeJS.ProcessEnv = process.env): string[] {
  const root = join(goModCache(env), `sigs.k8s.io/kwok@v${bins.pins.KWOK_VERSION}/kustomize/stage`);
  const files = [
    'node/fast/node-initialize.yaml',
    'node/heartbeat/node-heartbeat.yaml',
    'pod/fast/pod-ready.yaml',
    'pod/fast/pod-complete.yaml',
    'pod/fast/pod-delete.yaml',
  ].map((f) => join(root, f));
  for (const f of files)
    if (!existsSync(f)) throw new Error(`${f} missing: run bash scripts/build-counterparts.sh`);
  return files;
}

async function waitHealthy(
  proc: ManagedProcess,
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  await waitFor(
    async () => {
      if (!proc.running()) throw new Error(`${what} exited early:\n${await tailFile(proc.logPath)}`);
      try {
        return await check();
      } catch {
        return false;
      }
    },
    {
      timeoutMs,
      intervalMs: 200,
      describe: async () => `${what} not ready after ${timeoutMs} ms:\n${await tailFile(proc.logPath)}`,
    },
  );
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.ok;
}

/** Starts the cluster in `dir`. On failure everything started so far is stopped. */
export async function startKubeCluster(options: {
  dir: string;
  nodes?: readonly NodeSpec[];
}): Promise<KubeCluster> {
  const bins = counterparts();
  const kubectlBin = ensureKubectl();
  const dir = options.dir;
  const nodes = options.nodes ?? TALOS_LIKE_NODES;
  const logs = join(dir, 'logs');
  const pki = join(dir, 'pki');
  await mkdir(logs, { recursive: true });
  await mkdir(pki, { recursive: true });
  const started: ManagedProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of started.reverse()) await p.stop({ timeoutMs: 10_000 });
    started.length = 0;
  };
  const start = async (name: string, bin: string, args: string[], env?: NodeJS.ProcessEnv) => {
    const p = await startProcess(bin, args, {
      logPath: join(logs, `${name}.log`),
      cwd: dir,
      env: { ...process.env, ...env },
    });
    started.push(p);
    return p;
  };

  try {
    // etcd
    const etcdPort = await freePort(HOST.etcd);
    const etcdPeer = await freePort(HOST.etcd);
    const etcdUrl = `http://${HOST.etcd}:${etcdPort}`;
    const etcd = await start('etcd', bins.etcd, [
      `--data-dir=${join(dir, 'etcd')}`,
      '--name=default',
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://${HOST.etcd}:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://${HOST.etcd}:${etcdPeer}`,
      `--initial-cluster=default=http://${HOST.etcd}:${etcdPeer}`,
      // A test cluster thrown away at the end: durability buys nothing.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitHealthy(etcd, 'etcd', () => httpOk(`${etcdUrl}/health`));

    // kube-apiserver: the service-account signing key, a static admin token, and the apiserver's
    // own self-signed serving certificate (written into --cert-dir), which the kubeconfig trusts.
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saKey = join(pki, 'sa.key');
    const saPub = join(pki, 'sa.pub');
    await writeFile(saKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }));
    const token = randomBytes(24).toString('hex');
    await writeFile(join(pki, 'tokens.csv'), `${token},admin,admin,system:masters\n`, { mode: 0o600 });
    const apiPort = await freePort(HOST.apiserver);
    const server = `https://${HOST.apiserver}:${apiPort}`;
    const apiserver = await start('kube-apiserver', bins.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${HOST.apiserver}`,
      `--advertise-address=${HOST.apiserver}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${pki}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // The "kubernetes" Service's endpoint would be a loopback address, which Endpoints reject.
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      '--profiling=false',
    ]);
    const certPath = join(pki, 'apiserver.crt');
    await waitHealthy(apiserver, 'kube-apiserver certificate', async () => existsSync(certPath));
    const kubeconfig = stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'peili-test',
          cluster: { server, 'certificate-authority-data': (await readFile(certPath)).toString('base64') },
        },
      ],
      users: [{ name: 'admin', user: { token } }],
      contexts: [{ name: 'peili-test', context: { cluster: 'peili-test', user: 'admin' } }],
      'current-context': 'peili-test',
    });
    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig, { mode: 0o600 });
    const kubeEnv = { ...process.env, KUBECONFIG: kubeconfigPath };
    const kubectl = async (args: readonly string[]): Promise<string> => {
      try {
        const { stdout } = await run(kubectlBin, [...args], { env: kubeEnv, maxBuffer: 64 << 20 });
        return stdout;
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`kubectl ${args.join(' ')}: ${e.stderr || e.message}`);
      }
    };
    await waitHealthy(
      apiserver,
      'kube-apiserver',
      async () => (await kubectl(['get', '--raw', '/readyz'])).trim() === 'ok',
    );

    // The controllers and the scheduler, unauthenticated serving off (--secure-port=0).
    await start('kube-controller-manager', bins.kubeControllerManager, [
      `--kubeconfig=${kubeconfigPath}`,
      '--leader-elect=false',
      '--secure-port=0',
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${certPath}`,
      '--use-service-account-credentials=false',
      `--bind-address=${HOST.controllerManager}`,
    ]);
    await start('kube-scheduler', bins.kubeScheduler, [
      `--kubeconfig=${kubeconfigPath}`,
      '--leader-elect=false',
      '--secure-port=0',
      `--bind-address=${HOST.scheduler}`,
    ]);

    // kwok and its nodes.
    const stages = join(dir, 'kwok-stages.yaml');
    await writeFile(
      stages,
      kwokStageFiles(bins)
        .map((f) => readFileSync(f, 'utf8'))
        .join('\n---\n'),
    );
    await start('kwok', bins.kwok, [
      `--config=${stages}`,
      `--kubeconfig=${kubeconfigPath}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--node-ip=${HOST.kwok}`,
      `--server-address=${HOST.kwok}:${await freePort(HOST.kwok)}`,
      '--cidr=10.244.0.0/16',
    ]);
    const nodeFile = join(dir, 'nodes.yaml');
    await writeFile(nodeFile, nodes.map((n, i) => stringify(nodeObject(n, i))).join('---\n'));
    await kubectl(['apply', '-f', nodeFile]);
    await kubectl(['wait', '--for=condition=Ready', 'node', '--all', '--timeout=120s']);

    // Flux: CRDs from the module cache, the controllers as local processes.
    for (const f of fluxCrdFiles(bins)) await kubectl(['apply', '--server-side', '-f', f]);
    await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
    await kubectl(['create', 'namespace', 'flux-system']);
    const fluxEnv = { KUBECONFIG: kubeconfigPath, RUNTIME_NAMESPACE: 'flux-system' };
    const storagePort = await freePort(HOST.sourceController);
    const scHealth = await freePort(HOST.sourceController);
    const source = await start(
      'source-controller',
      bins.sourceController,
      [
        `--storage-path=${join(dir, 'flux-storage')}`,
        `--storage-addr=${HOST.sourceController}:${storagePort}`,
        `--storage-adv-addr=${HOST.sourceController}:${storagePort}`,
        `--metrics-addr=${HOST.sourceController}:${await freePort(HOST.sourceController)}`,
        `--health-addr=${HOST.sourceController}:${scHealth}`,
        '--log-level=debug',
      ],
      fluxEnv,
    );
    const hcHealth = await freePort(HOST.helmController);
    const helm = await start(
      'helm-controller',
      bins.helmController,
      [
        `--metrics-addr=${HOST.helmController}:${await freePort(HOST.helmController)}`,
        `--health-addr=${HOST.helmController}:${hcHealth}`,
        '--log-level=debug',
      ],
      fluxEnv,
    );
    await waitHealthy(source, 'source-controller', () =>
      httpOk(`http://${HOST.sourceController}:${scHealth}/readyz`),
    );
    await waitHealthy(helm, 'helm-controller', () =>
      httpOk(`http://${HOST.helmController}:${hcHealth}/readyz`),
    );

    return {
      dir,
      kubeconfigPath,
      kubeconfig,
      server,
      nodes,
      bins,
      kubectl,
      getJson: async (args) =>
        JSON.parse(await kubectl(['get', ...args, '-o', 'json'])) as Record<string, unknown>,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
