// One "node" of the test bed: a real containerd daemon (the runtime PEILI_CONTAINERD selects, see
// runtime.ts) with the CRI plugin, its own root, state, sockets and registry config path, so
// several run side by side on one machine. containerd 2.x nodes are configured as Talos configures
// them (talos-cri.ts); 1.x nodes get the version-2 config of TESTBED.md.
import { execFile } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createCriClient } from './cri-client.js';
import { startProcess, waitFor, type ManagedProcess } from './process.js';
import { selectedRuntime, runtimeBinary, runtimePath, type ContainerdRuntime } from './runtime.js';
import { tailFile } from './scratch.js';
import { mergeCriParts, talosBasePart, talosRegistriesPart, CRI_IMAGES, type CriPart } from './talos-cri.js';

const execFileAsync = promisify(execFile);

/** Snapshotters that work on the test machine (the kernel has overlay; the disk is ext4). */
export type Snapshotter = 'overlayfs' | 'native';

/** Options of {@link startContainerd}. */
export interface ContainerdOptions {
  /** Parent directory; the node lives in `<dir>/<name>/`. */
  readonly dir: string;
  /** Node name, also the folder name (e.g. `node1`). */
  readonly name: string;
  /** Default `overlayfs`. */
  readonly snapshotter?: Snapshotter;
  /** The CRI registry `config_path` (hosts.toml tree); default `<dir>/<name>/certs.d`. */
  readonly registryConfigPath?: string;
  /** Address of the CRI streaming server (this node's loopback address); default `127.0.0.1`. */
  readonly host?: string;
  /** CRI `sandbox_image`; never pulled by image-only tests. Default `registry.invalid/pause:3.9`. */
  readonly sandboxImage?: string;
  /** How long to wait for the socket and the CRI service; default 20000 ms. */
  readonly readyTimeoutMs?: number;
  /** The containerd to run; default the one PEILI_CONTAINERD selects (2.2). */
  readonly runtime?: ContainerdRuntime;
  /**
   * containerd 2.x only: the CRI parts after Talos's own (`00-base.part`, `01-registries.part`)
   * and the bed's (`10-testbed.part`), e.g. `20-customization.part`. Default: the part that keeps
   * unpacked layers, as every node running Peili needs (`keepLayersPart`). `[]`: a stock Talos
   * node, which discards layers.
   */
  readonly criParts?: readonly CriPart[];
}

/** Options of {@link ContainerdNode.ctr}. */
export interface CtrOptions {
  /** containerd namespace; default `k8s.io` (the CRI namespace). */
  readonly namespace?: string;
  /** Kills ctr after this long; default 120000 ms. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** A running (or stopped) containerd daemon. */
export interface ContainerdNode {
  readonly name: string;
  /** The node's directory `<dir>/<name>`. */
  readonly dir: string;
  /** gRPC socket path. */
  readonly socket: string;
  /** containerd `root`. */
  readonly root: string;
  /** `<root>/io.containerd.content.v1.content`: blobs are under `blobs/sha256/<hex>`. */
  readonly contentPath: string;
  /** The CRI registry config path (where `<registry>/hosts.toml` files go). */
  readonly registryConfigPath: string;
  readonly snapshotter: Snapshotter;
  /** The daemon's log file (debug level: every registry request and fallback is logged). */
  readonly logPath: string;
  /** The config file passed with `--config`. */
  readonly configPath: string;
  /** The containerd this node runs. */
  readonly runtime: ContainerdRuntime;
  /** PID of the running daemon, or undefined when stopped. */
  pid(): number | undefined;
  /** SIGTERM the daemon (SIGKILL after 10 s); safe to call twice. */
  stop(): Promise<void>;
  /** Start again on the same root after {@link stop}. */
  start(): Promise<void>;
  /** Runs `ctr -a <socket> -n <namespace> …args`; rejects with stderr on a non-zero exit. */
  ctr(args: readonly string[], options?: CtrOptions): Promise<{ stdout: string; stderr: string }>;
}

/** Paths of one node, derived from its directory. */
export interface ContainerdPaths {
  readonly root: string;
  readonly state: string;
  readonly socket: string;
  readonly ttrpcSocket: string;
  readonly debugSocket: string;
  readonly opt: string;
  readonly cniBin: string;
  readonly cniConf: string;
  readonly registryConfigPath: string;
  /** containerd 2.x: the CRI config the main config imports, merged from the parts in `criConfd`. */
  readonly criConfig: string;
  /** containerd 2.x: the folder of `*.part` files (Talos's `/etc/cri/conf.d`). */
  readonly criConfd: string;
}

/** The directory layout of a node in `nodeDir`. */
export function containerdPaths(nodeDir: string, registryConfigPath?: string): ContainerdPaths {
  return {
    root: join(nodeDir, 'root'),
    state: join(nodeDir, 'state'),
    socket: join(nodeDir, 'containerd.sock'),
    ttrpcSocket: join(nodeDir, 'containerd.sock.ttrpc'),
    debugSocket: join(nodeDir, 'debug.sock'),
    opt: join(nodeDir, 'opt'),
    cniBin: join(nodeDir, 'cni', 'bin'),
    cniConf: join(nodeDir, 'cni', 'conf'),
    registryConfigPath: registryConfigPath ?? join(nodeDir, 'certs.d'),
    criConfig: join(nodeDir, 'cri', 'conf.d', 'cri.toml'),
    criConfd: join(nodeDir, 'cri', 'conf.d'),
  };
}

const q = (value: string): string => JSON.stringify(value);

/** The sockets of a node, the same in config versions 2 and 3. */
function socketSections(paths: ContainerdPaths): string[] {
  return [
    '[grpc]',
    `  address = ${q(paths.socket)}`,
    '[ttrpc]',
    `  address = ${q(paths.ttrpcSocket)}`,
    '[debug]',
    `  address = ${q(paths.debugSocket)}`,
    // Debug level logs every registry request and each "trying next host".
    '  level = "debug"',
  ];
}

/** Renders the containerd 1.x config (version 2) of a node; see TESTBED.md §3. */
export function renderContainerdConfig(
  paths: ContainerdPaths,
  options: { snapshotter: Snapshotter; host: string; sandboxImage: string },
): string {
  return [
    'version = 2',
    `root = ${q(paths.root)}`,
    `state = ${q(paths.state)}`,
    // Plugins that only log errors on this machine.
    'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
    '',
    ...socketSections(paths),
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(paths.opt)}`,
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = ${q(options.sandboxImage)}`,
    `  stream_server_address = ${q(options.host)}`,
    '  stream_server_port = "0"',
    '  [plugins."io.containerd.grpc.v1.cri".containerd]',
    `    snapshotter = ${q(options.snapshotter)}`,
    // Keep layer blobs after unpack: the mirror serves them from the content store.
    '    discard_unpacked_layers = false',
    '  [plugins."io.containerd.grpc.v1.cri".cni]',
    `    bin_dir = ${q(paths.cniBin)}`,
    `    conf_dir = ${q(paths.cniConf)}`,
    '  [plugins."io.containerd.grpc.v1.cri".registry]',
    `    config_path = ${q(paths.registryConfigPath)}`,
    '',
  ].join('\n');
}

/**
 * The part every node running Peili needs on containerd 2.x: keep layer blobs after unpack, or the
 * mirror has nothing to serve once the garbage collector has run. The same setting infra/ writes
 * to Talos nodes' `20-customization.part`.
 */
export function keepLayersPart(): CriPart {
  return {
    name: '20-customization.part',
    toml: [`[plugins."${CRI_IMAGES}"]`, '  discard_unpacked_layers = false', ''].join('\n'),
  };
}

/** The bed's own CRI settings of a 2.x node (`10-testbed.part`): snapshotter, CNI, stream server. */
export function testbedCriPart(
  paths: ContainerdPaths,
  options: { snapshotter: Snapshotter; host: string; sandboxImage: string },
): CriPart {
  return {
    name: '10-testbed.part',
    toml: [
      `[plugins."${CRI_IMAGES}"]`,
      `  snapshotter = ${q(options.snapshotter)}`,
      `[plugins."${CRI_IMAGES}".pinned_images]`,
      `  sandbox = ${q(options.sandboxImage)}`,
      '[plugins."io.containerd.cri.v1.runtime".cni]',
      `  bin_dirs = [${q(paths.cniBin)}]`,
      `  conf_dir = ${q(paths.cniConf)}`,
      '[plugins."io.containerd.grpc.v1.cri"]',
      `  stream_server_address = ${q(options.host)}`,
      '  stream_server_port = "0"',
      '',
    ].join('\n'),
  };
}

/**
 * The containerd 2.x main config (version 3) of a node: its own paths, and an import of the CRI
 * config merged from parts, as Talos's `/etc/cri/containerd.toml` imports `conf.d/cri.toml`.
 */
export function renderContainerdConfigV3(paths: ContainerdPaths): string {
  return [
    'version = 3',
    `root = ${q(paths.root)}`,
    `state = ${q(paths.state)}`,
    `imports = [${q(paths.criConfig)}]`,
    // Plugins that only log errors on this machine (no such filesystems or devices).
    'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]',
    '',
    ...socketSections(paths),
    '',
  ].join('\n');
}

// sun_path holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH = 107;

function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

/** Starts containerd with a generated config and waits until its CRI service answers. */
export async function startContainerd(options: ContainerdOptions): Promise<ContainerdNode> {
  // containerd resolves relative paths against its own cwd: make them absolute here.
  const nodeDir = resolve(options.dir, options.name);
  const paths = containerdPaths(nodeDir, options.registryConfigPath && resolve(options.registryConfigPath));
  if (Buffer.byteLength(paths.ttrpcSocket) > MAX_SOCKET_PATH) {
    throw new Error(
      `startContainerd: socket path ${paths.ttrpcSocket} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter dir`,
    );
  }
  const snapshotter = options.snapshotter ?? 'overlayfs';
  const configPath = join(nodeDir, 'config.toml');
  const logPath = join(nodeDir, 'containerd.log');
  const readyTimeoutMs = options.readyTimeoutMs ?? 20000;
  const runtime = options.runtime ?? selectedRuntime();
  for (const dir of [
    paths.criConfd,
    paths.root,
    paths.state,
    paths.opt,
    paths.cniBin,
    paths.cniConf,
    paths.registryConfigPath,
  ]) {
    await mkdir(dir, { recursive: true });
  }
  const nodeOptions = {
    snapshotter,
    host: options.host ?? '127.0.0.1',
    sandboxImage: options.sandboxImage ?? 'registry.invalid/pause:3.9',
  };
  if (runtime.major === 2) {
    const parts = [
      talosBasePart(),
      talosRegistriesPart(paths.registryConfigPath),
      testbedCriPart(paths, nodeOptions),
      ...(options.criParts ?? [keepLayersPart()]),
    ];
    for (const part of parts) await writeFile(join(paths.criConfd, part.name), part.toml);
    await writeFile(paths.criConfig, mergeCriParts(parts));
    await writeFile(configPath, renderContainerdConfigV3(paths));
  } else {
    await writeFile(configPath, renderContainerdConfig(paths, nodeOptions));
  }
  let proc: ManagedProcess | undefined;

  const start = async (): Promise<void> => {
    if (proc?.running()) return;
    // Always --config: the package's /etc/containerd/config.toml must never be read.
    const started = await startProcess(runtimeBinary(runtime, 'containerd'), ['--config', configPath], {
      logPath,
      env: { ...process.env, PATH: runtimePath(runtime) },
    });
    proc = started;
    const cri = createCriClient(paths.socket, { timeoutMs: 2000 });
    try {
      const died = async (): Promise<never> => {
        throw new Error(`containerd ${options.name} exited early:\n${await tailFile(logPath)}`);
      };
      const describe = async (): Promise<string> =>
        `containerd ${options.name} not ready after ${readyTimeoutMs} ms:\n${await tailFile(logPath)}`;
      await waitFor(
        async () => {
          if (!started.running()) return died();
          return (
            (await stat(paths.socket).catch(() => undefined))?.isSocket() === true &&
            socketAccepts(paths.socket)
          );
        },
        { timeoutMs: readyTimeoutMs, intervalMs: 20, describe },
      );
      // The CRI plugin initialises after the socket opens; a Version answer means pulls work.
      await waitFor(
        async () => {
          if (!started.running()) return died();
          return cri.version().then(
            () => true,
            () => false,
          );
        },
        { timeoutMs: readyTimeoutMs, intervalMs: 50, describe },
      );
    } catch (err) {
      await started.stop();
      throw err;
    } finally {
      cri.close();
    }
  };

  await start();
  return {
    name: options.name,
    dir: nodeDir,
    socket: paths.socket,
    root: paths.root,
    contentPath: join(paths.root, 'io.containerd.content.v1.content'),
    registryConfigPath: paths.registryConfigPath,
    snapshotter,
    logPath,
    configPath,
    runtime,
    pid: () => (proc?.running() ? proc.pid : undefined),
    start,
    stop: async () => {
      await proc?.stop({ timeoutMs: 10000 });
    },
    ctr: async (args, ctrOptions = {}) => {
      try {
        const { stdout, stderr } = await execFileAsync(
          runtimeBinary(runtime, 'ctr'),
          ['-a', paths.socket, '-n', ctrOptions.namespace ?? 'k8s.io', ...args],
          { timeout: ctrOptions.timeoutMs ?? 120000, signal: ctrOptions.signal, maxBuffer: 64 * 1024 * 1024 },
        );
        return { stdout, stderr };
      } catch (err) {
        const failure = err as Error & { stderr?: string };
        throw new Error(`ctr ${args.join(' ')} failed: ${failure.stderr?.trim() || failure.message}`, {
          cause: err,
        });
      }
    },
  };
}
