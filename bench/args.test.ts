import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRunnerArgs } from './args.js';

const KNOWN = ['pull-speedup', 'miss'];

describe('parseRunnerArgs', () => {
  const cases: { argv: string[]; expected: ReturnType<typeof parseRunnerArgs> }[] = [
    { argv: [], expected: { scenarios: [], quick: false, cpuProf: false, tsx: false } },
    {
      argv: ['miss', '--quick', 'miss', '--runs', '2'],
      expected: { scenarios: ['miss'], quick: true, cpuProf: false, tsx: false, runs: 2 },
    },
    {
      argv: ['--cpu-prof', '--tsx', '--out', 'x.md', 'pull-speedup', '--daemon-node-flags', ' --a=1  --b '],
      expected: {
        scenarios: ['pull-speedup'],
        quick: false,
        cpuProf: true,
        tsx: true,
        out: 'x.md',
        daemonNodeFlags: ['--a=1', '--b'],
      },
    },
  ];
  for (const { argv, expected } of cases) {
    it(`parses [${argv.join(' ')}]`, () => assert.deepEqual(parseRunnerArgs(argv, KNOWN), expected));
  }

  const errors: { argv: string[]; message: string }[] = [
    { argv: ['lookup'], message: 'unknown scenario lookup; known: pull-speedup, miss' },
    { argv: ['--fast'], message: 'unknown flag --fast' },
    { argv: ['--runs'], message: '--runs needs a value' },
    { argv: ['--runs', '0'], message: '--runs must be a whole number ≥ 1, got 0' },
    { argv: ['--out'], message: '--out needs a value' },
  ];
  for (const { argv, message } of errors) {
    it(`rejects [${argv.join(' ')}]`, () => assert.throws(() => parseRunnerArgs(argv, KNOWN), { message }));
  }
});
