import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KubeApiError, kubeTarget, type KubeApi } from './kube-api.js';
import { parseDaemonReport, readNodeHealth, waitForRebootedNode, type DaemonPods } from './node-reports.js';

const PODS: DaemonPods = {
  namespace: 'peili',
  selector: 'app.kubernetes.io/instance=peili',
  metricsPort: 9090,
  hostPort: 29999,
};
const report = (mirror: string, layers: string) =>
  JSON.stringify({ ready: true, node: { mirror, layers, runtime: 'containerd 2.1.5' } });

/** A fake apiserver: paths to bodies (a function may change its answer per call). */
function fakeApi(
  routes: Record<string, string | KubeApiError | (() => string)>,
): KubeApi & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    get: async (path) => {
      calls.push(path);
      const r = routes[path];
      if (r === undefined) throw new KubeApiError(404, path, 'not found');
      if (r instanceof KubeApiError) throw r;
      return typeof r === 'function' ? r() : r;
    },
  };
}

const podList = (pods: { name: string; node: string; ready: boolean; hostIP: string }[]) =>
  JSON.stringify({
    items: pods.map((p) => ({
      metadata: { name: p.name },
      spec: { nodeName: p.node },
      status: { hostIP: p.hostIP, conditions: [{ type: 'Ready', status: p.ready ? 'True' : 'False' }] },
    })),
  });
const LIST = '/api/v1/namespaces/peili/pods?labelSelector=app.kubernetes.io%2Finstance%3Dpeili';
const proxy = (pod: string) => `/api/v1/namespaces/peili/pods/${pod}:9090/proxy/readyz?verbose`;

describe('node reports', () => {
  it('parse a daemon report and refuse anything else', () => {
    assert.deepEqual(parseDaemonReport(report('configured', 'kept')), {
      mirror: 'configured',
      layers: 'kept',
      runtime: 'containerd 2.1.5',
    });
    assert.equal(parseDaemonReport('ok\n'), undefined);
    assert.equal(parseDaemonReport(JSON.stringify({ node: { mirror: 'yes', layers: 'kept' } })), undefined);
  });

  it('read each node through the pod proxy: serving only with the mirror configured and layers kept', async () => {
    const api = fakeApi({
      [LIST]: podList([
        { name: 'peili-a', node: 'n1', ready: true, hostIP: '10.0.0.1' },
        { name: 'peili-b', node: 'n2', ready: true, hostIP: '10.0.0.2' },
        { name: 'peili-c', node: 'n3', ready: true, hostIP: 'fd00::3' },
        { name: 'peili-d', node: 'n4', ready: false, hostIP: '10.0.0.4' },
      ]),
      [proxy('peili-a')]: report('configured', 'kept'),
      [proxy('peili-b')]: new KubeApiError(503, proxy('peili-b'), report('configured', 'discarded')),
      // peili-c: a kwok pod or an old daemon, the proxy fails.
      [proxy('peili-d')]: report('unknown', 'unknown'),
    });
    const health = await readNodeHealth(api, PODS);
    assert.deepEqual(
      Object.entries(health).map(([n, h]) => [n, h.status, h.endpoint]),
      [
        ['n1', 'serving', 'http://10.0.0.1:29999'],
        ['n2', 'discarding-layers', 'http://10.0.0.2:29999'],
        ['n3', 'unreachable', 'http://[fd00::3]:29999'],
        ['n4', 'not-ready', 'http://10.0.0.4:29999'],
      ],
    );
    assert.equal(health.n3?.report, 'unreachable');
  });

  it("use Talos's endpoint for every node when Talos's registry config points containerd at the mirror", async () => {
    const api = fakeApi({
      [LIST]: podList([{ name: 'peili-a', node: 'n1', ready: true, hostIP: '10.0.0.1' }]),
      [proxy('peili-a')]: report('not-configured', 'kept'),
    });
    const health = await readNodeHealth(api, { ...PODS, talosEndpoint: 'http://127.0.0.1:29999' });
    assert.deepEqual(health.n1?.endpoint, 'http://127.0.0.1:29999');
    assert.equal(health.n1?.status, 'not-configured');
  });
});

describe('waitForRebootedNode', () => {
  const node = (bootID: string, ready: boolean) =>
    JSON.stringify({
      status: { nodeInfo: { bootID }, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
    });

  it('waits for a new boot id, Ready, and its daemon serving', async () => {
    const states = [node('boot-1', true), node('boot-2', false), node('boot-2', true), node('boot-2', true)];
    const reports = [report('configured', 'discarded'), report('configured', 'kept')];
    let now = 0;
    const api = fakeApi({
      '/api/v1/nodes/n1': () => states.shift() ?? node('boot-2', true),
      [LIST]: podList([{ name: 'peili-a', node: 'n1', ready: true, hostIP: '10.0.0.1' }]),
      [proxy('peili-a')]: () => reports.shift() ?? report('configured', 'kept'),
    });
    const health = await waitForRebootedNode(api, {
      nodeName: 'n1',
      bootIdBefore: 'boot-1',
      pods: PODS,
      timeoutMs: 60_000,
      delay: async (ms) => {
        now += ms;
      },
      now: () => now,
    });
    assert.equal(health.status, 'serving');
    assert.equal(now, 15_000);
  });

  it('stops the rolling reboot with what it saw last when the time is up', async () => {
    let now = 0;
    const api = fakeApi({ '/api/v1/nodes/n1': node('boot-1', true) });
    await assert.rejects(
      waitForRebootedNode(api, {
        nodeName: 'n1',
        bootIdBefore: 'boot-1',
        pods: PODS,
        timeoutMs: 10_000,
        delay: async (ms) => {
          now += ms;
        },
        now: () => now,
      }),
      {
        message:
          'rolling reboot stopped at node n1: the node has not rebooted yet after 10 s (layers show as kept once an image is pulled on the node after its reboot; see docs/deploy-pulumi.md)',
      },
    );
  });
});

describe('kubeTarget', () => {
  const kubeconfig = `apiVersion: v1
kind: Config
current-context: admin@lab
contexts:
  - name: admin@lab
    context: {cluster: lab, user: admin@lab}
clusters:
  - name: lab
    cluster: {server: 'https://10.0.0.10:6443', certificate-authority-data: Y2E=}
users:
  - name: admin@lab
    user: {client-certificate-data: Y3J0, client-key-data: a2V5}
`;
  it('reads the current context of a talosctl kubeconfig', () => {
    const t = kubeTarget(kubeconfig);
    assert.equal(t.server.href, 'https://10.0.0.10:6443/');
    assert.equal(t.ca?.toString(), 'ca');
    assert.equal(t.cert?.toString(), 'crt');
    assert.equal(t.key?.toString(), 'key');
    assert.equal(t.insecure, false);
  });
  it('refuses exec users and a missing context, naming them', () => {
    assert.throws(
      () =>
        kubeTarget(
          kubeconfig.replace('client-certificate-data: Y3J0, client-key-data: a2V5', 'exec: {command: aws}'),
        ),
      {
        message:
          'kubeconfig: exec and auth-provider users are not supported here; use a certificate or token',
      },
    );
    assert.throws(() => kubeTarget(kubeconfig, 'other'), { message: "kubeconfig: no context 'other'" });
  });
});
