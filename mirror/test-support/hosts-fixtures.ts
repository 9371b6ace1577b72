// Test helpers for hosts/: a realistic registry config path to start from, and an exact snapshot
// of a directory tree (types, modes, bytes, link targets) to compare before and after.
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import assert from 'node:assert/strict';
import { isAbsolute, join } from 'node:path';
import { cleanup } from '../src/hosts/cleanup.js';
import { configure, type ConfigureOptions } from '../src/hosts/configure.js';
import { certPaths, parseHostsToml } from '../src/hosts/existing.js';
import { hasPeiliHeader, isTempName, RESERVED_NAMES } from '../src/hosts/layout.js';

/** One entry of a snapshot: kind, permission bits, and content (file bytes as text, link target). */
export interface SnapshotEntry {
  readonly kind: 'file' | 'dir' | 'link';
  readonly mode: string;
  readonly content?: string;
  readonly mtimeMs?: number;
}

/** Every entry below `root` by relative path, sorted. `withTimes` adds file mtimes. */
export async function snapshotTree(
  root: string,
  options: { withTimes?: boolean; exclude?: (rel: string) => boolean } = {},
): Promise<Record<string, SnapshotEntry>> {
  const out: Record<string, SnapshotEntry> = {};
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      if (options.exclude?.(rel)) continue;
      const path = join(dir, name);
      const stat = await lstat(path);
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isDirectory()) {
        out[rel] = { kind: 'dir', mode };
        await walk(path, rel);
      } else if (stat.isSymbolicLink()) {
        out[rel] = { kind: 'link', mode: '-', content: await readlink(path) };
      } else {
        out[rel] = {
          kind: 'file',
          mode,
          content: await readFile(path, 'utf8'),
          ...(options.withTimes ? { mtimeMs: Math.round(stat.mtimeMs) } : {}),
        };
      }
    }
  };
  await walk(root, '');
  return out;
}

/** docker.io's hosts.toml of the fixture: a corporate mirror with a relative CA and an absolute client pair. */
export function fixtureDockerHosts(root: string): string {
  return `server = "https://registry-1.docker.io"

[host."https://mirror.corp.example:5000"]
  capabilities = ["pull", "resolve"]
  ca = "ca.crt"
  client = [["${root}/docker.io/client.cert", "${root}/docker.io/client.key"]]
`;
}

/** quay.io's hosts.toml: its CA named by the path containerd sees on the host (not where we mounted it). */
export const FIXTURE_QUAY_HOSTS = `[host."https://quay-cache.corp.example"]
  ca = "/etc/containerd/certs.d/quay.io/certs/ca.pem"
  header = { X-Team = "infra" }
`;

/**
 * Builds a registry config path as a node might have it before Peili: hosts.toml files with
 * relative and absolute cert paths, nested folders, a Docker-style cert folder, a loose file, a
 * symlink and an empty folder, with distinct modes and fixed times.
 */
export async function buildFixtureTree(root: string): Promise<void> {
  const file = async (rel: string, content: string, mode: number): Promise<void> => {
    await writeFile(join(root, rel), content);
    await chmod(join(root, rel), mode);
    await utimes(join(root, rel), new Date('2024-01-02T03:04:05Z'), new Date('2024-01-02T03:04:05Z'));
  };
  await mkdir(join(root, 'docker.io'), { recursive: true });
  await file('docker.io/hosts.toml', fixtureDockerHosts(root), 0o644);
  await file('docker.io/ca.crt', 'DOCKER CA\n', 0o644);
  await file('docker.io/client.cert', 'CLIENT CERT\n', 0o644);
  await file('docker.io/client.key', 'CLIENT KEY\n', 0o600);
  await mkdir(join(root, 'quay.io/certs'), { recursive: true });
  await file('quay.io/hosts.toml', FIXTURE_QUAY_HOSTS, 0o640);
  await file('quay.io/certs/ca.pem', 'QUAY CA\n', 0o444);
  await chmod(join(root, 'quay.io/certs'), 0o750);
  await mkdir(join(root, 'myreg.example:5000'));
  await file('myreg.example:5000/ca.crt', 'MYREG CA\n', 0o644);
  await file('README', 'managed by hand\n', 0o640);
  await symlink('docker.io', join(root, 'mirror-link'));
  await mkdir(join(root, 'empty'));
  await chmod(join(root, 'empty'), 0o700);
}

type Snapshot = Record<string, SnapshotEntry>;

/**
 * What containerd would read is sane: every live hosts.toml is either byte-identical to the
 * original at that path or a whole Peili file, and the cert files either one names exist.
 */
export function assertConsistent(live: Snapshot, original: Snapshot, root: string, where: string): void {
  for (const [rel, entry] of Object.entries(live)) {
    if (!rel.endsWith('/hosts.toml') || entry.kind !== 'file') continue;
    const text = entry.content!;
    const isOriginal = original[rel]?.content === text;
    assert.ok(
      isOriginal || hasPeiliHeader(text),
      `${where}: ${rel} is neither the original nor a Peili file`,
    );
    const file = parseHostsToml(text, rel);
    const folder = rel.slice(0, rel.lastIndexOf('/'));
    for (const table of [file.top, ...file.hosts.map((h) => h.table)]) {
      for (const cert of certPaths(table)) {
        const certRel = isAbsolute(cert)
          ? cert.startsWith(root + '/')
            ? cert.slice(root.length + 1)
            : undefined
          : `${folder}/${cert}`;
        if (certRel === undefined) continue; // a path outside the config path, not ours to check
        assert.equal(live[certRel]?.kind, 'file', `${where}: ${rel} names ${cert}, which is missing`);
      }
    }
  }
}

/** Excludes Peili's bookkeeping (backup folders, temp files) from a snapshot of what containerd reads. */
export const liveOnly = (rel: string): boolean =>
  RESERVED_NAMES.has(rel.split('/')[0]!) || rel.split('/').some(isTempName);

/** A fixture config path at a fixed place (absolute paths in it stay equal across rebuilds). */
export interface CrashBed {
  readonly root: string;
  /** The configure run under test: prepend-existing with two registries touches every code path. */
  readonly options: ConfigureOptions;
  /** Rebuilds the fixture tree from scratch. */
  fresh(): Promise<void>;
  /** Runs `op` without crashing and returns the step names it went through. */
  recordSteps(op: 'configure' | 'cleanup'): Promise<string[]>;
}

/** A CrashBed below `base`. */
export function createCrashBed(base: string): CrashBed {
  const root = join(base, 'certs.d');
  const options: ConfigureOptions = {
    configPath: root,
    registries: ['docker.io', 'ghcr.io'],
    mirrorTargets: ['http://10.0.0.7:29999'],
    resolve: true,
    prependExisting: true,
    containerdVersion: '1.6.20',
  };
  return {
    root,
    options,
    async fresh() {
      await rm(base, { recursive: true, force: true });
      await mkdir(root, { recursive: true });
      await buildFixtureTree(root);
    },
    async recordSteps(op) {
      const steps: string[] = [];
      const onStep = (step: string): void => void steps.push(step);
      if (op === 'configure') await configure({ ...options, onStep });
      else await cleanup({ configPath: root, onStep });
      return steps;
    },
  };
}
