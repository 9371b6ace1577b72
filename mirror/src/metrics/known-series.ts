// Series whose label values are known up front are exported at 0 from the start: a counter that
// has never been incremented is otherwise absent from the scrape, so `rate()`/`increase()` panels
// of a fresh node show "No data" instead of 0 and alerts on them cannot tell 0 from missing.
import type { Metrics } from './metrics.js';

/** The fixed label values of the byte counters: `served_bytes_total{source}`, `ingested_bytes_total{via}`. */
export const KNOWN_LABEL_VALUES = Object.freeze({
  servedBytesSource: Object.freeze(['local', 'peer'] as const),
  ingestedBytesVia: Object.freeze(['peer', 'upstream'] as const),
});

/** Creates every series of {@link KNOWN_LABEL_VALUES} at 0 (existing values are kept). */
export function initKnownSeries(metrics: Pick<Metrics, 'servedBytes' | 'ingestedBytes'>): void {
  for (const source of KNOWN_LABEL_VALUES.servedBytesSource) metrics.servedBytes.inc({ source }, 0);
  for (const via of KNOWN_LABEL_VALUES.ingestedBytesVia) metrics.ingestedBytes.inc({ via }, 0);
}
