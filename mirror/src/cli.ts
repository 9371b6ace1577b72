#!/usr/bin/env node
// The `peili` executable: parse the command line, dispatch the subcommand, map failures to exit
// codes (0 ok, 1 runtime error, 2 configuration error). SIGTERM/SIGINT abort the running command.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { ConfigError, parseConfig, type ConfigureConfig, type RegistryConfig } from './config.js';
import { cleanup, configure } from './hosts/index.js';
import { formatVersion, versionInfo } from './version.js';

/** Exit code of a successful run. */
export const EXIT_OK = 0;
/** Exit code of a runtime failure. */
export const EXIT_RUNTIME = 1;
/** Exit code of a configuration error (bad flag or environment value). */
export const EXIT_CONFIG = 2;

/** Where the CLI writes; injectable for tests. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** What the CLI calls outside itself; injectable for tests. */
export interface CliDeps {
  /** Runs the daemon (`./main.js` by default). */
  readonly runRegistry?: (config: RegistryConfig, signal?: AbortSignal) => Promise<void>;
  /** Asks containerd for its version (the containerd adapter by default). */
  readonly containerdVersion?: (socket: string, signal: AbortSignal) => Promise<string>;
}

/** Milliseconds `configure` waits for containerd's Version answer before assuming 1.6. */
export const VERSION_PROBE_TIMEOUT_MS = 3000;

async function askContainerdVersion(socket: string, signal: AbortSignal): Promise<string> {
  // Loaded here so that only `configure` pays for grpc.
  const { createContainerdStore } = await import('./containerd/containerd-store.js');
  const store = createContainerdStore({ socket, callTimeoutMs: VERSION_PROBE_TIMEOUT_MS });
  try {
    return (await store.containerdVersion(signal)).version;
  } finally {
    store.close();
  }
}

async function runConfigure(
  config: ConfigureConfig,
  log: Logger,
  deps: CliDeps,
  signal: AbortSignal,
): Promise<void> {
  let version = config.containerdVersion;
  if (version === undefined) {
    try {
      version = await (deps.containerdVersion ?? askContainerdVersion)(config.containerdSock, signal);
      log.info({ containerdVersion: version, socket: config.containerdSock }, 'containerd version detected');
    } catch (error) {
      signal.throwIfAborted();
      // Unknown counts as 1.6: dial_timeout is left out, which every containerd accepts.
      log.warn(
        { socket: config.containerdSock, err: error },
        'containerd version unknown; writing hosts.toml for containerd 1.6 (no dial_timeout)',
      );
    }
  }
  const result = await configure({
    configPath: config.configPath,
    registries: config.mirroredRegistries,
    mirrorTargets: config.mirrorTargets,
    resolve: config.resolve,
    prependExisting: config.prependExisting,
    containerdVersion: version,
    dialTimeoutMs: config.dialTimeout,
    signal,
  });
  for (const warning of result.warnings) log.warn({ configPath: config.configPath }, warning);
  if (result.foreign.length > 0) {
    log.warn(
      { configPath: config.configPath, entries: result.foreign },
      'entries not made by peili and not in the backup were left alone',
    );
  }
  log.info(
    {
      configPath: config.configPath,
      folders: result.folders,
      backupCreated: result.backupCreated,
      dialTimeout: result.dialTimeout,
      containerdVersion: version,
    },
    'hosts.toml written',
  );
}

/**
 * Runs one `peili` invocation (`argv` without node and the script) and resolves to its exit code.
 * Never throws; `signal` aborts the running subcommand.
 */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: CliIo,
  deps: CliDeps = {},
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  let config;
  try {
    config = parseConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`peili: ${error.message}\n`);
      return EXIT_CONFIG;
    }
    throw error;
  }
  if (config.command === 'help') {
    io.stdout.write(config.usage);
    return EXIT_OK;
  }
  if (config.command === 'version') {
    io.stdout.write(formatVersion(versionInfo(env)) + '\n');
    return EXIT_OK;
  }
  const log = pino({ level: config.logLevel, base: { command: config.command } }, io.stdout);
  try {
    switch (config.command) {
      case 'configure':
        await runConfigure(config, log, deps, signal);
        break;
      case 'cleanup': {
        const result = await cleanup({ configPath: config.configPath, signal });
        log.info(
          { configPath: config.configPath, ...result },
          result.restored ? 'backup restored' : 'no backup; peili files removed',
        );
        break;
      }
      case 'registry': {
        const run = deps.runRegistry ?? (await import('./main.js')).runRegistry;
        log.info({ version: versionInfo(env).version }, 'starting');
        await run(config, signal);
        break;
      }
    }
    return EXIT_OK;
  } catch (error) {
    if (signal.aborted) {
      log.warn('interrupted');
    } else {
      log.error({ err: error }, (error as Error).message);
    }
    return EXIT_RUNTIME;
  }
}

/** True when this module is the process entry point (directly, or through npm's bin symlink). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const controller = new AbortController();
  for (const name of ['SIGTERM', 'SIGINT'] as const)
    process.once(name, () => controller.abort(new Error(`${name} received`)));
  void runCli(
    process.argv.slice(2),
    process.env,
    { stdout: process.stdout, stderr: process.stderr },
    {},
    controller.signal,
  ).then((code) => {
    process.exitCode = code;
  });
}
