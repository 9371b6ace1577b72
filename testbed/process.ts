// Starts the test bed's child processes (registry, containerd) with their output appended to a
// log file, stops them by their real PID, and keeps a process-wide list so that nothing is left
// running when the test process exits or is interrupted.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { TESTBED_HOME } from './scratch.js';

/** How a managed child ended. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A child process started by {@link startProcess}. */
export interface ManagedProcess {
  /** PID of the real program (spawned without a shell, so never the PID of a wrapper). */
  readonly pid: number;
  /** The command line, for messages. */
  readonly commandLine: string;
  /** File the child's stdout and stderr are appended to. */
  readonly logPath: string;
  /** Settles once the child has exited (reading it keeps the event loop alive until then). */
  readonly exited: Promise<ExitStatus>;
  /** True until the child has exited. */
  running(): boolean;
  /** SIGTERM, then SIGKILL after `timeoutMs` (default 5000); resolves once the child is gone. */
  stop(options?: { timeoutMs?: number }): Promise<ExitStatus>;
}

/** Options of {@link startProcess}. */
export interface StartProcessOptions {
  /** Log file, opened in append mode (like `>>`) so restarts and shared logs keep earlier lines. */
  readonly logPath: string;
  /** Working directory of the child; default: the current one. */
  readonly cwd?: string;
  /** Environment of the child; default: this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
}

const live = new Set<ChildProcess>();
let hooksInstalled = false;

/** Where each started child is recorded, so a later run can end children of a killed test process. */
export const PID_DIR = join(TESTBED_HOME, 'pids');

interface PidRecord {
  readonly pid: number;
  readonly owner: number;
  readonly argv: string[];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Sends SIGTERM to children recorded by test processes that no longer exist (a test run killed
 * with SIGKILL cannot clean up after itself). A record is acted on only when the PID still runs
 * the very same command line, so an unrelated process that reused the PID is left alone.
 * Returns the PIDs signalled. Runs once automatically before the first child is started.
 */
export function reapOrphans(dir: string = PID_DIR): number[] {
  const reaped: number[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return reaped;
  }
  for (const name of names) {
    const path = join(dir, name);
    let record: PidRecord;
    try {
      record = JSON.parse(readFileSync(path, 'utf8')) as PidRecord;
    } catch {
      continue;
    }
    if (isAlive(record.owner)) continue;
    if (readCmdline(record.pid) === `${record.argv.join('\0')}\0`) {
      try {
        process.kill(record.pid, 'SIGTERM');
        reaped.push(record.pid);
      } catch {
        // Gone in the meantime.
      }
    }
    rmSync(path, { force: true });
  }
  return reaped;
}

function recordPid(pid: number, argv: string[]): string | undefined {
  try {
    mkdirSync(PID_DIR, { recursive: true });
    const path = join(PID_DIR, `${pid}.json`);
    writeFileSync(path, JSON.stringify({ pid, owner: process.pid, argv } satisfies PidRecord));
    return path;
  } catch {
    return undefined;
  }
}

/** Children started by this module that are still running (for diagnostics and tests). */
export function liveProcessCount(): number {
  return live.size;
}

// One set of process hooks for the whole test process: on a normal exit the children are killed
// synchronously (an exit handler cannot wait); on SIGINT/SIGTERM they get SIGTERM and a short
// grace period, so containerd can unmount and remove its sockets.
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const reaped = reapOrphans();
  if (reaped.length > 0)
    console.warn(
      `testbed: sent SIGTERM to ${reaped.length} orphaned test bed process(es): ${reaped.join(', ')}`,
    );
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    void killAll(2000).finally(() => {
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/** SIGTERM every live child, SIGKILL those still running after `graceMs`; resolves when all are gone. */
export async function killAll(graceMs = 5000): Promise<void> {
  const children = [...live];
  await Promise.all(children.map((child) => terminate(child, graceMs)));
}

function waitExit(child: ChildProcess): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function terminate(child: ChildProcess, timeoutMs: number): Promise<ExitStatus> {
  const exited = waitExit(child);
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  // Waiting for the exit must hold the event loop open, which the unref'd child does not.
  child.ref();
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const first = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (first !== 'timeout') return first;
  child.kill('SIGKILL');
  return exited;
}

/**
 * Starts `command` directly (no shell) with stdout and stderr appended to `options.logPath`.
 * Rejects when the program cannot be spawned (e.g. not installed).
 */
export async function startProcess(
  command: string,
  args: readonly string[],
  options: StartProcessOptions,
): Promise<ManagedProcess> {
  installHooks();
  mkdirSync(dirname(options.logPath), { recursive: true });
  const commandLine = [command, ...args].join(' ');
  appendFileSync(options.logPath, `--- testbed: start ${commandLine} at ${new Date().toISOString()}\n`);
  const fd = openSync(options.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err) => reject(new Error(`cannot start ${command}: ${err.message}`)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${command}: no pid`);
  live.add(child);
  const pidFile = recordPid(pid, [command, ...args]);
  const exited = waitExit(child).then((status) => {
    live.delete(child);
    if (pidFile) rmSync(pidFile, { force: true });
    return status;
  });
  // A forgotten child must not keep a test process alive forever (the exit hook still kills it);
  // whoever waits on `exited` re-references it so that wait is not cut short.
  child.unref();
  return {
    pid,
    commandLine,
    logPath: options.logPath,
    get exited() {
      child.ref();
      return exited;
    },
    running: () => child.exitCode === null && child.signalCode === null,
    stop: async (stopOptions) => {
      const status = await terminate(child, stopOptions?.timeoutMs ?? 5000);
      live.delete(child);
      return status;
    },
  };
}

/** Polls `check` every `intervalMs` until it returns true, throwing `describe()` after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean>,
  options: {
    timeoutMs: number;
    intervalMs?: number;
    describe: () => Promise<string> | string;
    signal?: AbortSignal;
  },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(await options.describe());
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}
