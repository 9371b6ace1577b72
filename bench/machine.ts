// The machine description of the report: CPUs, memory, versions and load, read once per run.
import { execFile } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { runtimeBinary, selectedRuntime } from '../testbed/index.js';
import type { MachineInfo } from './report.js';

const run = promisify(execFile);

async function firstLine(command: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, [...args]);
    return (stdout.trim() || stderr.trim()).split('\n')[0] ?? 'unknown';
  } catch (error) {
    return `unknown (${(error as Error).message.split('\n')[0]})`;
  }
}

/** Everything of {@link MachineInfo} that is known when the run starts. */
export async function describeMachine(): Promise<
  Omit<MachineInfo, 'loadEnd' | 'durationSeconds' | 'command' | 'mode' | 'daemonNodeFlags'>
> {
  return {
    date: new Date().toISOString(),
    cpus: Number(await firstLine('nproc', [])) || cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    // The runtime the bed runs (PEILI_CONTAINERD), named with the version its binary prints.
    containerd: `${selectedRuntime().name}: ${await firstLine(runtimeBinary(selectedRuntime(), 'containerd'), ['--version'])}`,
    registry: await firstLine('docker-registry', ['--version']),
    kernel: release(),
    loadStart: loadavg(),
  };
}
