// Runs the node check on an interval and reports it: the `peili_node_check` and
// `peili_runtime_info` metrics, and a log line the first time a result is known and whenever it
// changes (not on every round). `/readyz?verbose` reads `check.latest()`.
import type { Metrics } from '../metrics/metrics.js';
import { LAYERS_STATES, MIRROR_STATES, type NodeCheck, type NodeReport } from './node-check.js';

/** The log calls the reporter makes. */
export interface NodeCheckLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Options of `startNodeCheck`. */
export interface NodeCheckReporterOptions {
  /** Time between rounds. @default 60000 */
  readonly intervalMs?: number;
}

/** Sets the node-check gauges from a report (every state of each check, 1 for the current). */
export function recordNodeReport(
  metrics: Pick<Metrics, 'nodeCheck' | 'runtimeInfo'>,
  report: NodeReport,
): void {
  for (const state of MIRROR_STATES)
    metrics.nodeCheck.set({ check: 'mirror', state }, state === report.mirror ? 1 : 0);
  for (const state of LAYERS_STATES)
    metrics.nodeCheck.set({ check: 'layers', state }, state === report.layers ? 1 : 0);
  metrics.runtimeInfo.reset();
  const [runtime, version] =
    report.runtime === 'unknown' ? ['unknown', 'unknown'] : report.runtime.split(' ', 2);
  metrics.runtimeInfo.set({ runtime: runtime ?? 'unknown', version: version ?? 'unknown' }, 1);
}

/** Starts checking until `signal` aborts; never throws (a failed round keeps the last report). */
export function startNodeCheck(
  check: NodeCheck,
  deps: { metrics: Pick<Metrics, 'nodeCheck' | 'runtimeInfo'>; logger: NodeCheckLogger },
  signal: AbortSignal,
  options: NodeCheckReporterOptions = {},
): void {
  let logged: string | undefined;
  const round = async (): Promise<void> => {
    try {
      const report = await check.check(signal);
      recordNodeReport(deps.metrics, report);
      const key = `${report.mirror}/${report.layers}/${report.runtime}`;
      if (key === logged) return;
      logged = key;
      const serving = report.mirror === 'configured' && report.layers === 'kept';
      const problems = report.mirror === 'not-configured' || report.layers === 'discarded';
      const msg = serving
        ? 'node check: containerd asks this mirror and keeps layers'
        : problems
          ? 'node check: this node cannot serve peers (see mirror/layers; docs/deploy-pulumi.md)'
          : 'node check: not decided yet (no request and no pull seen since start)';
      (problems ? deps.logger.warn : deps.logger.info).call(deps.logger, { node: report }, msg);
    } catch (error) {
      if (!signal.aborted) deps.logger.warn({ err: error }, 'node check failed; keeping the last report');
    }
  };
  void round();
  const timer = setInterval(() => void round(), options.intervalMs ?? 60_000);
  timer.unref();
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}
