/**
 * The one exponential backoff: `base` ms after the first failure, doubling with each further
 * one, never more than `max` ms. Used for peer cool-downs and for re-subscribing to the store.
 */
export function backoff(failures: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
}
