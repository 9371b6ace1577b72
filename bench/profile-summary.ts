// Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and lists where the time went: self time per
// function and per file, highest first. `npx tsx bench/profile-summary.ts <file.cpuprofile> [top]`.
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

/** A V8 CPU profile as written by `--cpu-prof`. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One line of the summary: a function (or file) and its self time in ms. */
export interface HotSpot {
  readonly name: string;
  readonly selfMs: number;
  readonly share: number;
}

/** Self time per function (`name file:line`) and per file, highest first. */
export function summarizeProfile(profile: CpuProfile): {
  functions: HotSpot[];
  files: HotSpot[];
  totalMs: number;
} {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
    total += delta;
  });
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const file =
      frame.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/') || '(native)';
    const fn = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
    files.set(file, (files.get(file) ?? 0) + us);
  }
  const rank = (map: Map<string, number>): HotSpot[] =>
    [...map]
      .map(([name, us]) => ({ name, selfMs: us / 1000, share: total === 0 ? 0 : us / total }))
      .sort((a, b) => b.selfMs - a.selfMs);
  return { functions: rank(functions), files: rank(files), totalMs: total / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [path, top = '25'] = process.argv.slice(2);
  if (!path) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
  const summary = summarizeProfile(JSON.parse(await readFile(path, 'utf8')) as CpuProfile);
  console.log(`total ${summary.totalMs.toFixed(0)} ms`);
  for (const [title, list] of [
    ['functions', summary.functions],
    ['files', summary.files],
  ] as const) {
    console.log(`-- ${title}`);
    for (const spot of list.slice(0, Number(top))) {
      console.log(
        `${spot.selfMs.toFixed(0).padStart(7)} ms ${(spot.share * 100).toFixed(1).padStart(5)} %  ${spot.name}`,
      );
    }
  }
}
