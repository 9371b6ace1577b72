// The cleanup hook's waiting script (mirror/chart/files/wait-for-cleanup.mjs), run with node as
// the Job runs it, against a fake Kubernetes API server over TLS (a throwaway self-signed
// certificate from openssl, which is also the CA the script trusts) on the 127.0.7.0/24 loopback
// range: it waits for every node, reads the service account token on each call, retries API
// errors and gives up at its deadline.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CHART_DIR } from './helm.js';
import { daemonNode } from '../../testbed/daemon-node.js';

const HOST = '127.0.7.2';
const SCRIPT = join(CHART_DIR, 'files/wait-for-cleanup.mjs');
const DS_PATH = '/apis/apps/v1/namespaces/peili-system/daemonsets/peili-cleanup';

/** What the fake API answers to the n-th GET (the last answer repeats). */
type Answer = { status: number; body: unknown };

interface Seen {
  path: string;
  authorization: string;
}

describe('wait-for-cleanup.mjs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'peili-wait-'));
  const saDir = join(dir, 'sa');
  let server: Server;
  let port = 0;
  let answers: Answer[] = [];
  let seen: Seen[] = [];
  let onRequest: (n: number) => void = () => {};

  before(async () => {
    mkdirSync(saDir, { recursive: true });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${HOST}`,
        '-addext',
        `subjectAltName=IP:${HOST}`,
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(saDir, 'ca.crt'),
      ],
      { stdio: 'ignore', timeout: 20_000 },
    );
    writeFileSync(join(saDir, 'token'), 'token-1\n');
    writeFileSync(join(saDir, 'namespace'), 'ignored-when-POD_NAMESPACE-is-set');
    server = createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(saDir, 'ca.crt')) },
      (req, res) => {
        seen.push({ path: req.url ?? '', authorization: req.headers.authorization ?? '' });
        onRequest(seen.length);
        const answer = answers[Math.min(seen.length, answers.length) - 1] ?? { status: 500, body: {} };
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.body));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  function run(env: Record<string, string>): Promise<{ code: number; stdout: string }> {
    return new Promise((resolve) => {
      execFile(
        daemonNode().path,
        [SCRIPT],
        {
          timeout: 15_000,
          env: {
            PATH: process.env.PATH ?? '',
            KUBERNETES_SERVICE_HOST: HOST,
            KUBERNETES_SERVICE_PORT: String(port),
            PEILI_SERVICEACCOUNT_DIR: saDir,
            CLEANUP_DAEMONSET: 'peili-cleanup',
            POD_NAMESPACE: 'peili-system',
            WAIT_INTERVAL_MS: '50',
            WAIT_TIMEOUT_SECONDS: '5',
            ...env,
          },
        },
        (error, stdout) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout }),
      );
    });
  }

  const ds = (generation: number, status: Record<string, number>) => ({
    metadata: { name: 'peili-cleanup', generation },
    status,
  });
  const progressLines = (stdout: string) =>
    stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.replace(/^\S+ /, ''));

  it('waits until the controller has seen the DaemonSet and every scheduled pod is ready', async () => {
    seen = [];
    onRequest = () => {};
    answers = [
      { status: 200, body: ds(1, {}) },
      { status: 200, body: ds(1, { observedGeneration: 1, desiredNumberScheduled: 3, numberReady: 0 }) },
      { status: 200, body: ds(1, { observedGeneration: 1, desiredNumberScheduled: 3, numberReady: 2 }) },
      { status: 200, body: ds(1, { observedGeneration: 1, desiredNumberScheduled: 3, numberReady: 3 }) },
    ];
    const result = await run({});
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(progressLines(result.stdout), [
      '0/0 nodes cleaned up',
      '0/3 nodes cleaned up',
      '2/3 nodes cleaned up',
      '3/3 nodes cleaned up',
      'every node restored its hosts.toml',
    ]);
    assert.equal(seen.length, 4);
    for (const s of seen) assert.deepEqual(s, { path: DS_PATH, authorization: 'Bearer token-1' });
  });

  it('a cluster with no schedulable node is done at once', async () => {
    seen = [];
    answers = [
      { status: 200, body: ds(2, { observedGeneration: 2, desiredNumberScheduled: 0, numberReady: 0 }) },
    ];
    const result = await run({});
    assert.equal(result.code, 0, result.stdout);
    assert.equal(seen.length, 1);
  });

  it('reads the rotated service account token on every call and retries API errors', async () => {
    seen = [];
    onRequest = (n) => {
      if (n === 1) writeFileSync(join(saDir, 'token'), 'token-2\n');
    };
    answers = [
      { status: 503, body: { message: 'etcd busy' } },
      { status: 200, body: ds(1, { observedGeneration: 1, desiredNumberScheduled: 1, numberReady: 1 }) },
    ];
    const result = await run({});
    writeFileSync(join(saDir, 'token'), 'token-1\n');
    onRequest = () => {};
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(
      seen.map((s) => s.authorization),
      ['Bearer token-1', 'Bearer token-2'],
    );
    assert.deepEqual(progressLines(result.stdout), [
      `error: GET ${DS_PATH}: HTTP 503: {"message":"etcd busy"}`,
      '1/1 nodes cleaned up',
      'every node restored its hosts.toml',
    ]);
  });

  it('gives up at its deadline with the last state, exit code 1', async () => {
    seen = [];
    answers = [
      { status: 200, body: ds(1, { observedGeneration: 1, desiredNumberScheduled: 4, numberReady: 3 }) },
    ];
    const started = Date.now();
    const result = await run({ WAIT_TIMEOUT_SECONDS: '1', WAIT_INTERVAL_MS: '100' });
    assert.equal(result.code, 1);
    assert.ok(Date.now() - started < 5_000);
    assert.deepEqual(progressLines(result.stdout), [
      '3/4 nodes cleaned up',
      'failed: timed out after 1s waiting for daemonset peili-system/peili-cleanup (3/4 nodes cleaned up)',
    ]);
  });

  it('refuses to start without its environment', async () => {
    const result = await run({ CLEANUP_DAEMONSET: '' });
    assert.equal(result.code, 1);
    assert.deepEqual(progressLines(result.stdout), [
      'failed: CLEANUP_DAEMONSET and KUBERNETES_SERVICE_HOST must be set',
    ]);
  });
});
