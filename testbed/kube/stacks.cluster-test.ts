// `npm run test:cluster`: the Pulumi program under real engines. The real Pulumi CLI and engine
// with a file backend and passphrase secrets, the real Kubernetes provider plugin, a real
// kube-apiserver with etcd, controller-manager and scheduler, kwok's simulated nodes, and Flux's
// real source- and helm-controller installing the chart that `helm push` put into a real
// registry. Driven only through the `pulumi` CLI and stack configuration generated here.
//
// Each stack: `pulumi up` waits for the HelmRelease to turn Ready; the stack outputs match what
// the cluster shows; a second preview has no changes; `pulumi destroy` uninstalls the chart, whose
// post-delete hook (a DaemonSet and a Job) must run to completion, and removes everything.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startRegistry, type RegistryProcess } from '../registry.js';
import { createScratchDir, REPO_ROOT } from '../scratch.js';
import { startKubeCluster, type KubeCluster } from './cluster.js';
import { createPulumiWorkspace, type PulumiWorkspace } from './pulumi.js';
import { ensureHelm, ensureKubectl } from './tools.js';

const run = promisify(execFile);
const CHART_VERSION = '0.1.0';

let dir: string;
let registry: RegistryProcess;
let cluster: KubeCluster;
let ws: PulumiWorkspace;
let chartUrl: string;

/** Pushes the chart with a real `helm push`: package, then push as an OCI artifact. */
async function pushChart(scratch: string, registryHostPort: string): Promise<string> {
  const helm = ensureHelm();
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(scratch, 'helm/cache'),
    HELM_CONFIG_HOME: join(scratch, 'helm/config'),
    HELM_DATA_HOME: join(scratch, 'helm/data'),
  };
  const out = join(scratch, 'chart');
  await mkdir(out, { recursive: true });
  await run(
    helm,
    ['package', join(REPO_ROOT, 'mirror/chart'), '--version', CHART_VERSION, '--destination', out],
    { env },
  );
  await run(
    helm,
    ['push', join(out, `peili-${CHART_VERSION}.tgz`), `oci://${registryHostPort}/charts`, '--plain-http'],
    {
      env,
    },
  );
  return `oci://${registryHostPort}/charts/peili`;
}

interface TestStack {
  readonly name: string;
  readonly namespace: string;
  readonly releaseName: string;
  readonly hostPort: number;
  readonly mirroredRegistries: string[];
}

const STACKS: readonly TestStack[] = [
  {
    name: 'infra',
    namespace: 'peili',
    releaseName: 'peili',
    hostPort: 29999,
    mirroredRegistries: ['docker.io', 'ghcr.io'],
  },
  { name: 'apps', namespace: 'peili-apps', releaseName: 'mirror', hostPort: 29998, mirroredRegistries: [] },
];

/** The test stack configuration: HelmRelease mode against this cluster, Talos off. */
function stackConfig(s: TestStack): Record<string, unknown> {
  return {
    'peili:clusterName': `test-${s.name}`,
    'peili:talos': { enabled: false },
    'peili:chart': { url: chartUrl, version: CHART_VERSION, interval: '1m' },
    'peili:deploy': {
      mode: 'helmrelease',
      namespace: s.namespace,
      releaseName: s.releaseName,
      interval: '1m',
      coreDns: false,
    },
    'peili:mirror': { mirroredRegistries: s.mirroredRegistries, hostPort: s.hostPort, logLevel: 'debug' },
  };
}

/** Collects `kubectl get --watch` lines for `kinds` in `namespace` until stopped. */
function watchObjects(namespace: string, kinds: string): { stop(): Promise<string[]> } {
  const child = spawn(ensureKubectl(), ['get', kinds, '-n', namespace, '--watch', '-o', 'name'], {
    env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    stop: async () => {
      child.kill('SIGTERM');
      return [...new Set(out.split('\n').filter(Boolean))];
    },
  };
}

function condition(obj: Record<string, unknown>, type: string): Record<string, unknown> | undefined {
  const conditions = ((obj.status as Record<string, unknown> | undefined)?.conditions ?? []) as Record<
    string,
    unknown
  >[];
  return conditions.find((c) => c.type === type);
}

async function exists(args: string[]): Promise<boolean> {
  const out = await cluster.kubectl(['get', ...args, '--ignore-not-found', '-o', 'name']);
  return out.trim() !== '';
}

describe(
  'Pulumi program on real engines (kube-apiserver, kwok nodes, Flux, Pulumi CLI)',
  { timeout: 30 * 60_000 },
  () => {
    before(async () => {
      dir = await createScratchDir('kube');
      // The registry listens on 127.0.0.1: the Flux source-controller (go-containerregistry) speaks
      // plain HTTP only to 127.0.0.1, localhost and private ranges unless the OCIRepository says
      // `insecure`, which the program does not set; 127.0.0.1 with a free port keeps the program as is.
      registry = await startRegistry({ dir: join(dir, 'registry'), host: '127.0.0.1' });
      chartUrl = await pushChart(dir, registry.hostPort);
      cluster = await startKubeCluster({ dir: join(dir, 'cluster') });
      ws = await createPulumiWorkspace(join(dir, 'pulumi'), cluster.bins);
    });

    after(async () => {
      await cluster?.stop();
      await registry?.stop();
      if (dir && process.env.PEILI_KEEP_SCRATCH !== '1') await rm(dir, { recursive: true, force: true });
    });

    for (const s of STACKS) {
      test(`stack ${s.name}: up, Ready through Flux, outputs match, preview clean, destroy`, async () => {
        await ws.initStack(s.name, stackConfig(s), { 'peili:kubeconfig': cluster.kubeconfig });

        await ws.pulumi(['up', '-s', s.name, '--yes', '--skip-preview']);

        // Flux installed the chart and says so; kwok made every daemon pod Ready.
        const hr = await cluster.getJson([
          'helmrelease.helm.toolkit.fluxcd.io',
          '-n',
          s.namespace,
          s.releaseName,
        ]);
        assert.equal(condition(hr, 'Ready')?.status, 'True', JSON.stringify(hr.status));
        const history = ((hr.status as Record<string, unknown>).history ?? []) as Record<string, unknown>[];
        assert.equal(history[0]?.chartVersion, CHART_VERSION);
        const repo = await cluster.getJson([
          'ocirepository.source.toolkit.fluxcd.io',
          '-n',
          s.namespace,
          s.releaseName,
        ]);
        assert.equal(condition(repo, 'Ready')?.status, 'True', JSON.stringify(repo.status));
        const ds = await cluster.getJson(['daemonset', '-n', s.namespace, s.releaseName]);
        const st = ds.status as Record<string, number>;
        assert.equal(
          st.desiredNumberScheduled,
          cluster.nodes.length,
          'one daemon per node, control plane included',
        );
        assert.equal(st.numberReady, cluster.nodes.length);

        // The outputs say what the cluster shows.
        const outputs = JSON.parse(
          (await ws.pulumi(['stack', 'output', '--json', '--show-secrets', '-s', s.name])).stdout,
        ) as Record<string, unknown>;
        assert.deepEqual(outputs.health, {
          desired: st.desiredNumberScheduled,
          ready: st.numberReady,
          updated: st.updatedNumberScheduled,
          status: 'healthy',
        });
        assert.equal(outputs.namespace, s.namespace);
        assert.equal(outputs.deployMode, 'helmrelease');
        assert.equal(outputs.chartUrl, chartUrl);
        assert.equal(outputs.chartVersion, history[0]?.chartVersion);
        assert.equal(outputs.hostPort, s.hostPort);
        assert.deepEqual(outputs.mirroredRegistries, s.mirroredRegistries);
        const ports = (
          (ds.spec as Record<string, unknown>).template as {
            spec: { containers: { ports?: { hostPort?: number }[] }[] };
          }
        ).spec.containers
          .flatMap((c) => c.ports ?? [])
          .map((p) => p.hostPort)
          .filter((p) => p !== undefined);
        assert.ok(ports.includes(s.hostPort), `DaemonSet host ports ${ports.join(',')} lack ${s.hostPort}`);

        // Nothing drifts: the program run again against the live state plans no change.
        await ws.pulumi(['preview', '-s', s.name, '--expect-no-changes']);

        // Destroy: helm-controller uninstalls, the post-delete hook runs, everything goes.
        const watches = [watchObjects(s.namespace, 'jobs'), watchObjects(s.namespace, 'daemonsets')];
        await ws.pulumi(['destroy', '-s', s.name, '--yes', '--skip-preview']);
        const seen = (await Promise.all(watches.map((w) => w.stop()))).flat();
        assert.ok(
          seen.includes(`job.batch/${s.releaseName}-cleanup-wait`),
          `hook Job never ran; saw ${seen.join(', ')}`,
        );
        assert.ok(
          seen.includes(`daemonset.apps/${s.releaseName}-cleanup`),
          `hook DaemonSet never ran; saw ${seen.join(', ')}`,
        );
        assert.equal(await exists(['namespace', s.namespace]), false, `namespace ${s.namespace} left behind`);
        assert.equal(
          await exists([
            'helmreleases.helm.toolkit.fluxcd.io,ocirepositories.source.toolkit.fluxcd.io',
            '-A',
          ]),
          false,
        );
        assert.equal(await exists(['daemonsets', '-A']), false, 'a DaemonSet was left behind');
        const resources = JSON.parse((await ws.pulumi(['stack', 'export', '-s', s.name])).stdout) as {
          deployment: { resources?: unknown[] };
        };
        assert.equal(resources.deployment.resources?.length ?? 0, 0, 'the stack still holds resources');
      });
    }
  },
);
