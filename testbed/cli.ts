// Command-line access to the test bed for shell scripts (demo, benchmarks):
//   npx tsx testbed/cli.ts build <image>                 → prints the OciLayout as JSON
//   npx tsx testbed/cli.ts push <image> <host:port/repo:tag>
//   npx tsx testbed/cli.ts up --nodes 3 --dir DIR [--registry-host H] [--node-hosts a,b,c]
//        [--rate BYTES_PER_S] [--latency MS] [--limit-scope connection|proxy] [--per-node] [--upstream-for docker.io,ghcr.io]
//        [--snapshotter overlayfs|native]
//     → starts a cluster, writes DIR/cluster.json, prints it, runs until SIGINT/SIGTERM.
// <image> is a preset (app, multi, big) or sized:<MiB>:<layers> (e.g. sized:100:4).
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCluster, type Cluster } from './cluster.js';
import { buildImage, IMAGES, sizedImage, type ImageSpec } from './images.js';
import { pushImage } from './push.js';

/** Resolves an image name of the command line to a spec. */
export function imageSpecFor(name: string): ImageSpec {
  if (name === 'app' || name === 'multi' || name === 'big') return IMAGES[name];
  const sized = /^sized:(\d+(?:\.\d+)?):(\d+)$/.exec(name);
  if (sized) return sizedImage(Number(sized[1]), Number(sized[2]));
  throw new Error(`unknown image "${name}": use app, multi, big or sized:<MiB>:<layers>`);
}

/** The JSON description of a running cluster that `up` writes to `<dir>/cluster.json`. */
export function describeCluster(cluster: Cluster): Record<string, unknown> {
  return {
    pid: process.pid,
    registry: {
      url: cluster.registry.url,
      hostPort: cluster.registry.hostPort,
      logPath: cluster.registry.logPath,
      pid: cluster.registry.pid(),
    },
    upstream: cluster.upstream,
    proxies: cluster.proxies.map((proxy) => proxy.hostPort),
    nodes: cluster.nodes.map((node) => ({
      name: node.name,
      host: node.host,
      socket: node.socket,
      root: node.root,
      contentPath: node.contentPath,
      registryConfigPath: node.registryConfigPath,
      logPath: node.logPath,
      pid: node.pid(),
      upstream: node.upstream,
    })),
  };
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'build') {
    const [image] = rest;
    if (!image) throw new Error('usage: build <image>');
    console.log(JSON.stringify(await buildImage(imageSpecFor(image)), null, 2));
    return;
  }
  if (command === 'push') {
    const [image, target] = rest;
    if (!image || !target) throw new Error('usage: push <image> <host:port/repository:tag>');
    await pushImage(await buildImage(imageSpecFor(image)), target);
    return;
  }
  if (command === 'up') {
    const { values } = parseArgs({
      args: rest,
      options: {
        nodes: { type: 'string' },
        dir: { type: 'string' },
        'registry-host': { type: 'string' },
        'node-hosts': { type: 'string' },
        rate: { type: 'string' },
        latency: { type: 'string' },
        'limit-scope': { type: 'string' },
        'per-node': { type: 'boolean' },
        'upstream-for': { type: 'string' },
        snapshotter: { type: 'string' },
      },
    });
    if (!values.nodes || !values.dir) throw new Error('usage: up --nodes N --dir DIR [options]');
    const scope = values['limit-scope'];
    if (scope !== undefined && scope !== 'connection' && scope !== 'proxy')
      throw new Error(`--limit-scope must be connection or proxy, got "${scope}"`);
    const snapshotter = values.snapshotter;
    if (snapshotter !== undefined && snapshotter !== 'overlayfs' && snapshotter !== 'native')
      throw new Error(`--snapshotter must be overlayfs or native, got "${snapshotter}"`);
    const throttled = values.rate !== undefined || values.latency !== undefined;
    const cluster = await startCluster({
      nodes: Number(values.nodes),
      dir: values.dir,
      ...(values['registry-host'] ? { registryHost: values['registry-host'] } : {}),
      ...(values['node-hosts'] ? { nodeHosts: values['node-hosts'].split(',') } : {}),
      ...(snapshotter ? { snapshotter } : {}),
      ...(values['upstream-for'] ? { upstreamFor: values['upstream-for'].split(',') } : {}),
      ...(throttled
        ? {
            throttle: {
              ...(values.rate ? { bytesPerSecond: Number(values.rate) } : {}),
              ...(values.latency ? { latencyMs: Number(values.latency) } : {}),
              ...(scope ? { limitScope: scope } : {}),
              ...(values['per-node'] ? { perNode: true } : {}),
            },
          }
        : {}),
    });
    const description = JSON.stringify(describeCluster(cluster), null, 2);
    await writeFile(join(values.dir, 'cluster.json'), `${description}\n`);
    console.log(description);
    // The children are unref'd; this keeps the process (and so the cluster) up until a signal,
    // whose handler (process.ts) stops every child before exiting.
    setInterval(() => {}, 1 << 30);
    return;
  }
  throw new Error('usage: cli.ts <build|push|up> …');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
