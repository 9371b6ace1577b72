// What every scenario gets from the runner: the mode, the shared bed (started on first use),
// a scratch directory and a logger; and the shape a scenario has.
import type { Bed } from './bed.js';
import type { ScenarioReport } from './report.js';

/** Runner state handed to each scenario. */
export interface BenchContext {
  /** Quick mode: fewer runs and smaller sizes, the whole run under 10 minutes. */
  readonly quick: boolean;
  /** Profile the daemons and in-process routers with `--cpu-prof`. */
  readonly cpuProf: boolean;
  /** Where profiles go when `cpuProf` is set. */
  readonly profileDir: string;
  /** Scratch directory of this run (removed at the end). */
  readonly dir: string;
  /** `full` in full mode, `quick` in quick mode; an explicit `--runs` overrides both. */
  runs(full: number, quick: number): number;
  /** The three-node bed, started once and shared by the scenarios of one run. */
  bed(): Promise<Bed>;
  /** Progress line on stderr. */
  log(message: string): void;
  readonly signal: AbortSignal;
}

/** What a scenario returns: the report without the fields the runner fills in. */
export type ScenarioResult = Omit<ScenarioReport, 'id' | 'title' | 'seconds' | 'error'>;

/** One benchmark scenario. */
export interface Scenario {
  /** Name on the command line. */
  readonly id: string;
  /** Section title in BENCHMARKS.md. */
  readonly title: string;
  /** True when it needs the containerd bed (the others run in-process). */
  readonly usesBed: boolean;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}
