// Scratch directories, log tails and free ports: the small plumbing every test bed part shares.
import { mkdir, mkdtemp, open } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder that holds `testbed/`). */
export const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** `<repo>/.testbed`: git-ignored home of scratch directories and the image cache. */
export const TESTBED_HOME = join(REPO_ROOT, '.testbed');

/**
 * Creates a fresh directory named `<prefix>-XXXXXX` under `<repo>/.testbed/` (or the OS temp
 * directory when that cannot be created). The caller removes it.
 */
export async function createScratchDir(prefix: string): Promise<string> {
  if (!/^[A-Za-z0-9._-]{1,40}$/.test(prefix)) {
    throw new Error(`createScratchDir: prefix must be 1-40 characters of [A-Za-z0-9._-], got "${prefix}"`);
  }
  try {
    await mkdir(TESTBED_HOME, { recursive: true });
    return await mkdtemp(join(TESTBED_HOME, `${prefix}-`));
  } catch {
    return mkdtemp(join(tmpdir(), `peili-${prefix}-`));
  }
}

/** The last `maxBytes` of a log file, or a note that it cannot be read (for error messages). */
export async function tailFile(path: string, maxBytes = 4000): Promise<string> {
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, maxBytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    return `(cannot read ${path}: ${(err as Error).message})`;
  }
}

/** Asks the kernel for a free TCP port on `host` (bind to port 0, read it back, release it). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePort: no TCP address on ${host}`));
        return;
      }
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}
