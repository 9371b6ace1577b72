// Statistics of repeated measurements: the median and spread the report shows, and ratios of
// medians measured in the same run. Pure functions, no I/O.

/** The summary of one series of samples. */
export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p25: number;
  readonly median: number;
  readonly p75: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

function sorted(samples: readonly number[]): number[] {
  if (samples.length === 0) throw new Error('no samples');
  for (const value of samples) {
    if (!Number.isFinite(value)) throw new Error(`sample is not a finite number: ${value}`);
  }
  return [...samples].sort((a, b) => a - b);
}

/**
 * The p-th percentile (0 ≤ p ≤ 100) by linear interpolation between the closest ranks
 * (the "R-7" / spreadsheet definition): p0 is the minimum, p100 the maximum.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile must be from 0 to 100, got ${p}`);
  return percentileOfSorted(sorted(samples), p);
}

function percentileOfSorted(values: readonly number[], p: number): number {
  const rank = (p / 100) * (values.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return values[low]! + (values[high]! - values[low]!) * (rank - low);
}

/** The median (the 50th percentile; the mean of the two middle values for an even count). */
export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** Count, min, quartiles, p99, max and mean of `samples`. */
export function summarize(samples: readonly number[]): Summary {
  const values = sorted(samples);
  return {
    n: values.length,
    min: values[0]!,
    p25: percentileOfSorted(values, 25),
    median: percentileOfSorted(values, 50),
    p75: percentileOfSorted(values, 75),
    p99: percentileOfSorted(values, 99),
    max: values[values.length - 1]!,
    mean: values.reduce((sum, v) => sum + v, 0) / values.length,
  };
}

/** `baseline / candidate` of the medians: how many times faster the candidate is (times). */
export function speedup(baseline: readonly number[], candidate: readonly number[]): number {
  return median(baseline) / median(candidate);
}

/** Formats a number with `digits` decimals, dropping none (stable column widths in tables). */
export function fixed(value: number, digits = 1): string {
  return value.toFixed(digits);
}

/** `median (min–max)` of a summary, each scaled by `scale` and shown with `digits` decimals. */
export function medianRange(summary: Summary, digits = 1, scale = 1): string {
  return `${fixed(summary.median * scale, digits)} (${fixed(summary.min * scale, digits)}–${fixed(summary.max * scale, digits)})`;
}
