// Test helpers for hosts/: a realistic registry config path to start from, and an exact snapshot
// of a directory tree (types, modes, bytes, link targets) to compare before and after.
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';

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
          ...(options.withTimes ? { mtimeMs: Math.floor(stat.mtimeMs) } : {}),
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
