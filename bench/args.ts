// The runner's command line, parsed without side effects (tested in args.test.ts).

/** Parsed command line of the runner. */
export interface RunnerArgs {
  readonly scenarios: readonly string[];
  readonly quick: boolean;
  readonly runs?: number;
  readonly out?: string;
  readonly cpuProf: boolean;
  /** Run the daemons from the TypeScript sources under tsx instead of a compiled build. */
  readonly tsx: boolean;
  /** Extra Node.js flags for the daemons (`--daemon-node-flags "--max-semi-space-size=4"`). */
  readonly daemonNodeFlags?: readonly string[];
}

/** Parses the runner's arguments; throws with a usage message on anything unknown. */
export function parseRunnerArgs(argv: readonly string[], known: readonly string[]): RunnerArgs {
  const scenarios: string[] = [];
  let quick = false;
  let cpuProf = false;
  let tsx = false;
  let runs: number | undefined;
  let out: string | undefined;
  let daemonNodeFlags: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--cpu-prof') cpuProf = true;
    else if (arg === '--tsx') tsx = true;
    else if (arg === '--runs' || arg === '--out' || arg === '--daemon-node-flags') {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      if (arg === '--out') out = value;
      else if (arg === '--daemon-node-flags') daemonNodeFlags = value.split(/\s+/).filter(Boolean);
      else {
        runs = Number(value);
        if (!Number.isInteger(runs) || runs < 1)
          throw new Error(`--runs must be a whole number ≥ 1, got ${value}`);
      }
    } else if (arg.startsWith('--')) throw new Error(`unknown flag ${arg}`);
    else if (!known.includes(arg)) throw new Error(`unknown scenario ${arg}; known: ${known.join(', ')}`);
    else if (!scenarios.includes(arg)) scenarios.push(arg);
  }
  return {
    scenarios,
    quick,
    cpuProf,
    tsx,
    ...(runs !== undefined ? { runs } : {}),
    ...(out !== undefined ? { out } : {}),
    ...(daemonNodeFlags !== undefined ? { daemonNodeFlags } : {}),
  };
}
