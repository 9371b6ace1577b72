// A minimal read-only Kubernetes API client for what the Kubernetes provider cannot do during
// `pulumi up`: list the daemon's pods, ask each daemon for its node report through the
// apiserver's pod proxy, and read a node's status (boot id, Ready) during a rolling reboot.
// It understands the kubeconfigs `talosctl kubeconfig` writes (client certificates) and bearer
// tokens; anything else (exec plugins) is refused with a clear error.
import { request } from 'node:https';
import { parse } from 'yaml';

/** GET access to the Kubernetes API. */
export interface KubeApi {
  /** GETs `path` (starting with `/`) and returns the body; throws `KubeApiError` on a non-2xx status. */
  get(path: string, signal?: AbortSignal): Promise<string>;
}

/** A non-2xx answer from the API. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly path: string,
    readonly body: string,
  ) {
    super(`GET ${path}: HTTP ${status}: ${body.slice(0, 200).trim()}`);
    this.name = 'KubeApiError';
  }
}

interface Named<T> {
  name: string;
  [k: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

/** Connection settings taken from a kubeconfig's current context. */
export interface KubeTarget {
  readonly server: URL;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly token?: string;
  readonly insecure: boolean;
}

function b64(v: unknown): Buffer | undefined {
  return typeof v === 'string' && v !== '' ? Buffer.from(v, 'base64') : undefined;
}

/** Reads the current context of a kubeconfig; throws naming what it cannot use. */
export function kubeTarget(kubeconfig: string, context?: string): KubeTarget {
  const doc = parse(kubeconfig) as {
    'current-context'?: string;
    contexts?: Named<{ cluster: string; user: string }>[];
    clusters?: Named<Record<string, unknown>>[];
    users?: Named<Record<string, unknown>>[];
  };
  const name = context ?? doc['current-context'];
  const ctx = doc.contexts?.find((c) => c.name === name)?.context;
  if (!ctx) throw new Error(`kubeconfig: no context '${String(name)}'`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (!cluster || typeof cluster.server !== 'string')
    throw new Error(`kubeconfig: cluster '${ctx.cluster}' has no server`);
  if (user.exec !== undefined || user['auth-provider'] !== undefined)
    throw new Error(
      'kubeconfig: exec and auth-provider users are not supported here; use a certificate or token',
    );
  const cert = b64(user['client-certificate-data']);
  const key = b64(user['client-key-data']);
  const token = typeof user.token === 'string' ? user.token : undefined;
  const ca = b64(cluster['certificate-authority-data']);
  return {
    server: new URL(cluster.server),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(token ? { token } : {}),
    insecure: cluster['insecure-skip-tls-verify'] === true,
  };
}

/** A client for the kubeconfig's current context. */
export function createKubeApi(kubeconfig: string, options: { timeoutMs?: number } = {}): KubeApi {
  const target = kubeTarget(kubeconfig);
  const timeout = options.timeoutMs ?? 10_000;
  return {
    get(path, signal) {
      const url = new URL(path, target.server);
      return new Promise<string>((resolve, reject) => {
        const req = request(
          url,
          {
            method: 'GET',
            headers: {
              accept: 'application/json',
              ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
            },
            ...(target.ca ? { ca: target.ca } : {}),
            ...(target.cert ? { cert: target.cert } : {}),
            ...(target.key ? { key: target.key } : {}),
            rejectUnauthorized: !target.insecure,
            timeout,
            ...(signal ? { signal } : {}),
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', reject);
            res.on('end', () => {
              const body = Buffer.concat(chunks).toString('utf8');
              const status = res.statusCode ?? 0;
              if (status >= 200 && status < 300) resolve(body);
              else reject(new KubeApiError(status, path, body));
            });
          },
        );
        req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeout} ms`)));
        req.on('error', reject);
        req.end();
      });
    },
  };
}
