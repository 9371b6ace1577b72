// The post-delete hook's waiting Job runs this with the daemon image's Node.js: it polls the
// cleanup DaemonSet until every scheduled pod is ready, which happens only after that pod's init
// container (`peili cleanup`) restored the node's hosts.toml. Plain ESM with no dependencies, so
// it needs nothing from the image but `node`. Exit 0: every node is clean; 1: timeout or error.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

const env = process.env;
const saDir = env.PEILI_SERVICEACCOUNT_DIR || '/var/run/secrets/kubernetes.io/serviceaccount';
const name = env.CLEANUP_DAEMONSET;
const timeoutMs = Number(env.WAIT_TIMEOUT_SECONDS || '300') * 1000;
const intervalMs = Number(env.WAIT_INTERVAL_MS || '2000');

function log(line) {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

/** One GET against the API server with the pod's service account; resolves the parsed JSON. */
function get(path) {
  // The projected token rotates: read it for every call.
  const token = readFileSync(`${saDir}/token`, 'utf8').trim();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: env.KUBERNETES_SERVICE_HOST,
        port: Number(env.KUBERNETES_SERVICE_PORT || '443'),
        path,
        method: 'GET',
        ca: readFileSync(`${saDir}/ca.crt`),
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = chunks.map((c) => c.toString('utf8')).join('');
          if (res.statusCode !== 200) {
            reject(new Error(`GET ${path}: HTTP ${res.statusCode}: ${body.slice(0, 300)}`));
            return;
          }
          try {
            resolve(JSON.parse(body));
          } catch (error) {
            reject(new Error(`GET ${path}: invalid JSON: ${error.message}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Whether the DaemonSet's controller has seen its spec and every scheduled pod is ready. */
function progress(ds) {
  const status = ds.status || {};
  const desired = status.desiredNumberScheduled || 0;
  const ready = status.numberReady || 0;
  const observed = (status.observedGeneration || 0) >= (ds.metadata.generation || 1);
  return { done: observed && ready >= desired, text: `${ready}/${desired} nodes cleaned up` };
}

async function main() {
  if (!name || !env.KUBERNETES_SERVICE_HOST) {
    throw new Error('CLEANUP_DAEMONSET and KUBERNETES_SERVICE_HOST must be set');
  }
  const namespace = env.POD_NAMESPACE || readFileSync(`${saDir}/namespace`, 'utf8').trim();
  const path = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets/${encodeURIComponent(name)}`;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const state = progress(await get(path));
      if (state.text !== last) log(state.text);
      last = state.text;
      if (state.done) return;
    } catch (error) {
      // A transient API error is retried until the deadline; the last one is reported.
      last = `error: ${error.message}`;
      log(last);
    }
    if (Date.now() + intervalMs > deadline) {
      throw new Error(
        `timed out after ${timeoutMs / 1000}s waiting for daemonset ${namespace}/${name} (${last})`,
      );
    }
    await sleep(intervalMs);
  }
}

main().then(
  () => {
    log('every node restored its hosts.toml');
    process.exit(0);
  },
  (error) => {
    log(`failed: ${error.message}`);
    process.exit(1);
  },
);
