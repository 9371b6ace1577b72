// Which containerd the test bed runs. One setting picks it for the tests, the demo and the
// benchmarks: PEILI_CONTAINERD=2.2 (default, as Talos 1.12.9+), 2.1 (Talos 1.11/1.12.0-1.12.7),
// 1.7, or 1.6 (Debian 12's package, what many existing clusters run). The versions are pinned in
// scripts/pins.env; scripts/ensure-runtimes.sh builds or fetches them into the cache.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './scratch.js';

/** The runtimes the bed can run, by the setting's value. */
export const RUNTIME_NAMES = ['2.2', '2.1', '1.7', '1.6'] as const;
/** A value of PEILI_CONTAINERD. */
export type RuntimeName = (typeof RUNTIME_NAMES)[number];
/** The runtime the bed runs when PEILI_CONTAINERD is not set. */
export const DEFAULT_RUNTIME: RuntimeName = '2.2';

/** One containerd runtime of the bed. */
export interface ContainerdRuntime {
  readonly name: RuntimeName;
  /** The pinned version (the Debian package version for packaged builds; 1.6: the system's). */
  readonly version: string;
  /** Folder holding `containerd`, `containerd-shim-runc-v2` and `ctr`; undefined: the system's (on PATH). */
  readonly binDir: string | undefined;
  /** 2.x: a version-3 config assembled from CRI parts as Talos does; 1.x: the version-2 config. */
  readonly major: 1 | 2;
}

/** Reads `KEY=value` lines (comments and blanks skipped) of scripts/pins.env. */
export function parsePins(text: string): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(\S+)\s*$/.exec(line.trim());
    if (match) pins[match[1]!] = match[2]!;
  }
  return pins;
}

/** The cache folder of built and fetched counterparts (outside the repository). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PEILI_CACHE_DIR || join(homedir(), '.cache', 'peili');
}

const PIN_KEYS: Record<Exclude<RuntimeName, '1.6'>, string> = {
  '2.2': 'CONTAINERD_2_2_VERSION',
  '2.1': 'CONTAINERD_2_1_DEB',
  '1.7': 'CONTAINERD_1_7_DEB',
};

/** The runtime named `name`, at its pinned version; binaries are not checked (see `selectedRuntime`). */
export function runtimeFor(
  name: RuntimeName,
  pins: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): ContainerdRuntime {
  if (name === '1.6') return { name, version: '1.6 (system)', binDir: undefined, major: 1 };
  const key = PIN_KEYS[name];
  const version = pins[key];
  if (!version) throw new Error(`scripts/pins.env: ${key} is missing`);
  return {
    name,
    version,
    binDir: join(cacheDir(env), `containerd-${version}`, 'bin'),
    major: name.startsWith('2.') ? 2 : 1,
  };
}

/** Parses a PEILI_CONTAINERD value; the error names the variable and the accepted values. */
export function parseRuntimeName(value: string | undefined): RuntimeName {
  if (value === undefined || value === '') return DEFAULT_RUNTIME;
  if ((RUNTIME_NAMES as readonly string[]).includes(value)) return value as RuntimeName;
  throw new Error(`PEILI_CONTAINERD: expected one of ${RUNTIME_NAMES.join(', ')}, got "${value}"`);
}

let selected: ContainerdRuntime | undefined;

/**
 * The runtime PEILI_CONTAINERD selects, checked to be installed (a clear error names the command
 * that installs it).
 */
export function selectedRuntime(env: NodeJS.ProcessEnv = process.env): ContainerdRuntime {
  if (selected && env === process.env) return selected;
  const name = parseRuntimeName(env.PEILI_CONTAINERD);
  const runtime = runtimeFor(
    name,
    parsePins(readFileSync(join(REPO_ROOT, 'scripts', 'pins.env'), 'utf8')),
    env,
  );
  if (runtime.binDir && !existsSync(join(runtime.binDir, 'containerd'))) {
    throw new Error(
      `containerd ${runtime.name} (${runtime.version}) is not installed in ${runtime.binDir}: run bash scripts/ensure-runtimes.sh ${runtime.name}`,
    );
  }
  if (env === process.env) selected = runtime;
  return runtime;
}

/** Path of one of the runtime's binaries (`containerd`, `ctr`), or its bare name for the system's. */
export function runtimeBinary(runtime: ContainerdRuntime, name: 'containerd' | 'ctr'): string {
  return runtime.binDir ? join(runtime.binDir, name) : name;
}

/** PATH for the daemon, so it finds the runtime's own shim first. */
export function runtimePath(runtime: ContainerdRuntime, path: string = process.env.PATH ?? ''): string {
  return runtime.binDir ? `${runtime.binDir}:${path}` : path;
}
