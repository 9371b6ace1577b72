// Deterministic routing keys for the simulations.
import { createHash } from 'node:crypto';

/** A `sha256:` digest key derived from `seed`. */
export function digestKey(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

/** A tag key of realistic length, e.g. `docker.io/library/application-7:v1.2.7`. */
export function tagKey(i: number): string {
  return `docker.io/library/application-${i}:v1.2.${i}`;
}
