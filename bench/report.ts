// The report writer: turns the machine description and every scenario's result into the
// Markdown of BENCHMARKS.md (summary of targets first, then one section per scenario).
// Pure: the runner gathers the data, this only formats it.

/** The machine and run the figures come from. */
export interface MachineInfo {
  /** ISO date-time the run started (UTC). */
  readonly date: string;
  /** `nproc`. */
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryMiB: number;
  /** `process.version`, e.g. `v20.20.2`. */
  readonly node: string;
  /** The bed's runtime (PEILI_CONTAINERD) and its `containerd --version`, e.g. `2.2: containerd … 2.2.5`. */
  readonly containerd: string;
  /** `docker-registry --version`. */
  readonly registry: string;
  readonly kernel: string;
  /** 1/5/15-minute load averages when the run started and when it ended. */
  readonly loadStart: readonly number[];
  readonly loadEnd: readonly number[];
  /** The command that reproduces the figures, e.g. `npm run bench`. */
  readonly command: string;
  /** `quick` or `full`. */
  readonly mode: string;
  /** Wall time of the whole run, in seconds. */
  readonly durationSeconds: number;
  /** Node.js flags the daemons ran with (the chart's `peili.nodeOptions` unless overridden). */
  readonly daemonNodeFlags: string;
}

/** A table: column headers and rows of already formatted cells. */
export interface Table {
  readonly title?: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** One target of the issue and whether this run met it. */
export interface TargetCheck {
  /** What is measured, e.g. `speedup, 100 MiB / 4 layers`. */
  readonly name: string;
  /** The target as stated, e.g. `≥ 5x`. */
  readonly target: string;
  /** The figure measured in this run, formatted. */
  readonly measured: string;
  readonly met: boolean;
}

/** Everything a scenario reports. */
export interface ScenarioReport {
  /** The name on the command line, e.g. `pull-speedup`. */
  readonly id: string;
  readonly title: string;
  /** How it was measured (Markdown paragraphs or list items, one per entry). */
  readonly method: readonly string[];
  readonly tables: readonly Table[];
  readonly targets: readonly TargetCheck[];
  /** What limits a missed target, caveats, profiles taken (Markdown, one per entry). */
  readonly notes: readonly string[];
  /** Set when the scenario failed to run; the message is shown instead of figures. */
  readonly error?: string;
  /** Wall time of the scenario, seconds. */
  readonly seconds?: number;
}

/** Escapes a cell for a Markdown table (pipes and line breaks). */
export function escapeCell(cell: string): string {
  return cell.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** Renders one table as GitHub-flavoured Markdown; rows shorter than the header are padded. */
export function renderTable(table: Table): string {
  if (table.columns.length === 0) throw new Error('a table needs at least one column');
  const lines: string[] = [];
  if (table.title !== undefined) lines.push(`**${table.title}**`, '');
  lines.push(`| ${table.columns.map(escapeCell).join(' | ')} |`);
  lines.push(`|${table.columns.map(() => '---').join('|')}|`);
  for (const [i, row] of table.rows.entries()) {
    if (row.length > table.columns.length) {
      throw new Error(`row ${i} has ${row.length} cells for ${table.columns.length} columns`);
    }
    const cells = [...row, ...Array<string>(table.columns.length - row.length).fill('')];
    lines.push(`| ${cells.map(escapeCell).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** `met` / `missed` as the report writes it. */
export function verdict(met: boolean): string {
  return met ? 'met' : '**missed**';
}

function loads(values: readonly number[]): string {
  return values.map((v) => v.toFixed(2)).join(' / ');
}

/** The whole BENCHMARKS.md. `preamble` paragraphs come right after the title. */
export function renderReport(input: {
  readonly machine: MachineInfo;
  readonly scenarios: readonly ScenarioReport[];
  readonly preamble?: readonly string[];
}): string {
  const { machine, scenarios } = input;
  const out: string[] = ['# Benchmarks', ''];
  out.push(
    `Written by \`${machine.command}\` (${machine.mode} mode) on ${machine.date}; do not edit by hand.`,
    '',
  );
  for (const paragraph of input.preamble ?? []) out.push(paragraph, '');

  out.push('## Machine', '');
  out.push(
    renderTable({
      columns: ['', ''],
      rows: [
        ['CPUs (`nproc`)', String(machine.cpus)],
        ['CPU model', machine.cpuModel],
        ['memory', `${machine.memoryMiB} MiB`],
        ['kernel', machine.kernel],
        ['Node.js', machine.node],
        [
          'daemon Node.js flags',
          machine.daemonNodeFlags === '' ? '(none)' : `\`${machine.daemonNodeFlags}\``,
        ],
        ['containerd', machine.containerd],
        ['docker-registry', machine.registry],
        ['load average at start (1/5/15 min)', loads(machine.loadStart)],
        ['load average at end (1/5/15 min)', loads(machine.loadEnd)],
        ['run time', `${Math.round(machine.durationSeconds)} s`],
      ],
    }),
    '',
  );

  out.push('## Targets', '');
  const summaryRows: string[][] = [];
  for (const scenario of scenarios) {
    if (scenario.error !== undefined) {
      summaryRows.push([scenario.id, '(all)', '', 'failed to run', '**missed**']);
      continue;
    }
    for (const target of scenario.targets) {
      summaryRows.push([scenario.id, target.name, target.target, target.measured, verdict(target.met)]);
    }
  }
  out.push(
    renderTable({ columns: ['scenario', 'figure', 'target', 'measured', 'result'], rows: summaryRows }),
    '',
  );

  for (const scenario of scenarios) {
    const took = scenario.seconds !== undefined ? ` (${Math.round(scenario.seconds)} s)` : '';
    out.push(`## ${scenario.title}${took}`, '', `Run alone: \`npm run bench -- ${scenario.id}\``, '');
    if (scenario.method.length > 0) {
      out.push('Method:', '', ...scenario.method.map((line) => `- ${line}`), '');
    }
    if (scenario.error !== undefined) {
      out.push(`**The scenario failed:** \`${escapeCell(scenario.error)}\``, '');
    }
    for (const table of scenario.tables) out.push(renderTable(table), '');
    if (scenario.targets.length > 0) {
      out.push(
        renderTable({
          columns: ['target', 'required', 'measured', 'result'],
          rows: scenario.targets.map((t) => [t.name, t.target, t.measured, verdict(t.met)]),
        }),
        '',
      );
    }
    if (scenario.notes.length > 0) out.push(...scenario.notes.map((line) => `- ${line}`), '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}
