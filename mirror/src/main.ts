// Placeholder written by the CLI's author so `peili registry` can be dispatched; the integrator
// replaces this file with the composition root of the daemon.
import type { RegistryConfig } from './config.js';

/** Runs the registry daemon until `signal` aborts. Not wired yet. */
export async function runRegistry(_config: RegistryConfig, _signal?: AbortSignal): Promise<void> {
  throw new Error('not wired yet');
}
