// `npm run bench [-- <scenario>…] [--quick] [--runs N] [--out FILE] [--cpu-prof]`: runs the
// benchmark scenarios on the local test bed and writes BENCHMARKS.md (or FILE). With no scenario
// named, every scenario runs; a subset writes to `.testbed/bench-<names>.md` unless --out is given.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createScratchDir, REPO_ROOT, TESTBED_HOME } from '../testbed/index.js';
import { startBed, type Bed } from './bed.js';
import { parseRunnerArgs } from './args.js';
import { buildDaemon } from './build.js';
import type { BenchContext, Scenario } from './context.js';
import { describeMachine } from './machine.js';
import { renderReport, type ScenarioReport } from './report.js';
import { SCENARIOS } from './scenarios/index.js';
import { parse as parseYaml } from 'yaml';

/** The Node.js flags the chart gives the daemon (`peili.nodeOptions`): benchmarks measure what ships. */
async function chartNodeFlags(): Promise<string[]> {
  const values = parseYaml(await readFile(join(REPO_ROOT, 'mirror', 'chart', 'values.yaml'), 'utf8')) as {
    peili?: { nodeOptions?: string };
  };
  return (values.peili?.nodeOptions ?? '').split(/\s+/).filter(Boolean);
}

async function main(): Promise<void> {
  const args = parseRunnerArgs(
    process.argv.slice(2),
    SCENARIOS.map((s) => s.id),
  );
  const selected =
    args.scenarios.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => args.scenarios.includes(s.id));
  const all = selected.length === SCENARIOS.length;
  const out =
    args.out ??
    (all
      ? join(REPO_ROOT, 'BENCHMARKS.md')
      : join(TESTBED_HOME, `bench-${selected.map((s) => s.id).join('+')}.md`));
  const machine = await describeMachine();
  const daemonNodeFlags = args.daemonNodeFlags ?? (await chartNodeFlags());
  const started = performance.now();
  const dir = await createScratchDir('bench');
  const profileDir = join(TESTBED_HOME, 'bench-profiles');
  if (args.cpuProf) await mkdir(profileDir, { recursive: true });
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let bed: Promise<Bed> | undefined;
  const ctx: BenchContext = {
    quick: args.quick,
    cpuProf: args.cpuProf,
    profileDir,
    dir,
    signal: controller.signal,
    runs: (full, quick) => args.runs ?? (args.quick ? quick : full),
    bed: () => {
      bed ??= (async () => {
        const compiledCli = args.tsx ? undefined : await buildDaemon(join(dir, 'build'));
        return startBed({
          dir: join(dir, 'bed'),
          ...(compiledCli ? { compiledCli } : {}),
          nodeFlags: [
            ...daemonNodeFlags,
            ...(args.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
          ],
        });
      })();
      return bed;
    },
    log: (message) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`),
  };

  const reports: ScenarioReport[] = [];
  try {
    for (const scenario of selected) {
      reports.push(await runScenario(scenario, ctx));
      if (controller.signal.aborted) break;
    }
  } finally {
    if (bed) {
      ctx.log('stopping the bed');
      await (
        await bed.catch(() => undefined)
      )
        ?.stop()
        .catch((error: unknown) => ctx.log(`stop failed: ${String(error)}`));
    }
    // Keep the logs of a failed run for a look.
    if (reports.some((r) => r.error !== undefined)) ctx.log(`kept ${dir} (a scenario failed)`);
    else await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  // The raw results first, so a report that fails to render loses no run.
  await writeFile(join(TESTBED_HOME, 'bench-last.json'), JSON.stringify({ machine, reports }, null, 2));
  const text = renderReport({
    machine: {
      ...machine,
      loadEnd: loadavg(),
      durationSeconds: (performance.now() - started) / 1000,
      daemonNodeFlags: daemonNodeFlags.join(' '),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      mode: args.quick ? 'quick' : 'full',
    },
    scenarios: reports,
    preamble: PREAMBLE,
  });
  await writeFile(out, text);
  process.stdout.write(text);
  ctx.log(`wrote ${out}`);
}

async function runScenario(scenario: Scenario, ctx: BenchContext): Promise<ScenarioReport> {
  ctx.log(`${scenario.id}: start`);
  const started = performance.now();
  try {
    const result = await scenario.run(ctx);
    return {
      id: scenario.id,
      title: scenario.title,
      seconds: (performance.now() - started) / 1000,
      ...result,
    };
  } catch (error) {
    ctx.log(`${scenario.id}: failed: ${(error as Error).stack ?? String(error)}`);
    return {
      id: scenario.id,
      title: scenario.title,
      seconds: (performance.now() - started) / 1000,
      method: [],
      tables: [],
      targets: [],
      notes: [],
      error: (error as Error).message,
    };
  }
}

const PREAMBLE = [
  'Every figure below comes from one run of the command above on this machine: medians of several runs with their spread, and ratios against a baseline measured in the same run. Absolute times on a shared 2-core machine are noise; the ratios are the figures that count. The load average shows how busy the machine was (other engineers were running tests at the same time).',
  'Scenarios: `pull-speedup`, `data-plane`, `peer-hop`, `lookup`, `miss`, `cost`, `churn`. Each runs alone with `npm run bench -- <scenario>`; `--quick` cuts runs and sizes (whole run under 10 minutes); `--runs N` fixes the number of runs; `--cpu-prof` writes CPU profiles of the daemons to `.testbed/bench-profiles/` (summarise one with `npx tsx bench/profile-summary.ts <file>`). The daemons run compiled (`tsc -p tsconfig.build.json` into a scratch folder, as the image ships them); `--tsx` runs the sources under tsx instead; `--daemon-node-flags "<flags>"` passes Node.js flags to the daemons.',
];

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
