// Where scripts/build-counterparts.sh put the real programs the cluster test runs: one folder per
// `<name>-<version>` under ${PEILI_CACHE_DIR:-$HOME/.cache/peili}, versions from scripts/pins.env.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../scratch.js';

/** The pins file: `NAME_VERSION=x.y.z` lines (Renovate bumps them). */
export const PINS_PATH = join(REPO_ROOT, 'scripts/pins.env');

/** Reads `NAME=value` lines, ignoring comments and blank lines. */
export function parsePins(text: string): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z][A-Z0-9_]*)=([^\s#]+)$/.exec(line);
    if (!m) throw new Error(`${PINS_PATH}:${n + 1}: expected NAME=value, got "${line}"`);
    pins[m[1] as string] = m[2] as string;
  }
  return pins;
}

/** The cache root the build script writes to. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.PEILI_CACHE_DIR || join(env.HOME || homedir(), '.cache/peili');
}

/** Paths of the built programs. */
export interface Counterparts {
  readonly pins: Readonly<Record<string, string>>;
  readonly pulumi: string;
  readonly pulumiKubernetes: string;
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly kwok: string;
  readonly sourceController: string;
  readonly helmController: string;
}

/** Locates every program, failing with the command that builds what is missing. */
export function counterparts(env: NodeJS.ProcessEnv = process.env): Counterparts {
  const pins = parsePins(readFileSync(PINS_PATH, 'utf8'));
  const root = cacheRoot(env);
  const pin = (key: string): string => {
    const v = pins[key];
    if (!v) throw new Error(`${PINS_PATH}: no ${key}`);
    return v;
  };
  const bin = (name: string, versionKey: string, program: string): string =>
    join(root, `${name}-${pin(versionKey)}`, 'bin', program);
  const found: Counterparts = {
    pins,
    pulumi: bin('pulumi', 'PULUMI_VERSION', 'pulumi'),
    pulumiKubernetes: bin('pulumi-kubernetes', 'PULUMI_KUBERNETES_VERSION', 'pulumi-resource-kubernetes'),
    etcd: bin('etcd', 'ETCD_VERSION', 'etcd'),
    kubeApiserver: bin('kubernetes', 'KUBERNETES_VERSION', 'kube-apiserver'),
    kubeControllerManager: bin('kubernetes', 'KUBERNETES_VERSION', 'kube-controller-manager'),
    kubeScheduler: bin('kubernetes', 'KUBERNETES_VERSION', 'kube-scheduler'),
    kwok: bin('kwok', 'KWOK_VERSION', 'kwok'),
    sourceController: bin('flux-source-controller', 'FLUX_SOURCE_CONTROLLER_VERSION', 'source-controller'),
    helmController: bin('flux-helm-controller', 'FLUX_HELM_CONTROLLER_VERSION', 'helm-controller'),
  };
  const missing = Object.entries(found)
    .filter(([k, v]) => k !== 'pins' && !existsSync(v as string))
    .map(([, v]) => v as string);
  if (missing.length > 0)
    throw new Error(`not built: ${missing.join(', ')}; run: bash scripts/build-counterparts.sh`);
  return found;
}

/** The Go module cache, where the Flux CRDs are read from (never copied into the repository). */
export function goModCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GOMODCACHE) return env.GOMODCACHE;
  return join(env.GOPATH || join(env.HOME || homedir(), 'go'), 'pkg/mod');
}
