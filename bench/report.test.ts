import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  escapeCell,
  renderReport,
  renderTable,
  verdict,
  type MachineInfo,
  type ScenarioReport,
} from './report.js';

const machine: MachineInfo = {
  date: '2026-11-21T22:15:00.000Z',
  cpus: 2,
  cpuModel: 'Test CPU',
  memoryMiB: 24105,
  node: 'v20.20.2',
  containerd: '1.6.20~ds1',
  registry: 'v2.8.2+ds1',
  kernel: '6.1.0',
  loadStart: [1, 2.5, 3],
  loadEnd: [4, 5, 6.25],
  command: 'npm run bench',
  mode: 'quick',
  durationSeconds: 61.4,
  daemonNodeFlags: '--max-old-space-size=64 --max-semi-space-size=4',
};

const scenario: ScenarioReport = {
  id: 'miss',
  title: '5. Miss',
  method: ['GET of unknown digests'],
  tables: [{ columns: ['p50 ms', 'p99 ms'], rows: [['1.0', '2.0']] }],
  targets: [{ name: 'p99 time to 404', target: '< 25 ms', measured: '2.0 ms', met: true }],
  notes: ['loaded machine'],
  seconds: 3.2,
};

describe('renderTable', () => {
  it('renders header, separator and rows, padding short rows', () => {
    assert.equal(
      renderTable({ title: 'T', columns: ['a', 'b'], rows: [['1', '2'], ['3']] }),
      '**T**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |  |',
    );
  });

  it('escapes pipes and line breaks in cells', () => {
    assert.equal(escapeCell('a|b\nc'), 'a\\|b c');
    assert.equal(renderTable({ columns: ['x|y'], rows: [['1|2']] }), '| x\\|y |\n|---|\n| 1\\|2 |');
  });

  it('rejects rows wider than the header and tables without columns', () => {
    assert.throws(() => renderTable({ columns: ['a'], rows: [['1', '2']] }), {
      message: 'row 0 has 2 cells for 1 columns',
    });
    assert.throws(() => renderTable({ columns: [], rows: [] }), {
      message: 'a table needs at least one column',
    });
  });
});

describe('renderReport', () => {
  it('writes machine, target summary and one section per scenario', () => {
    const text = renderReport({
      machine,
      scenarios: [
        scenario,
        {
          ...scenario,
          id: 'churn',
          title: '7. Churn',
          targets: [{ ...scenario.targets[0]!, met: false }],
          notes: [],
        },
      ],
      preamble: ['Intro.'],
    });
    assert.equal(
      text,
      [
        '# Benchmarks',
        '',
        'Written by `npm run bench` (quick mode) on 2026-11-21T22:15:00.000Z; do not edit by hand.',
        '',
        'Intro.',
        '',
        '## Machine',
        '',
        '|  |  |',
        '|---|---|',
        '| CPUs (`nproc`) | 2 |',
        '| CPU model | Test CPU |',
        '| memory | 24105 MiB |',
        '| kernel | 6.1.0 |',
        '| Node.js | v20.20.2 |',
        '| daemon Node.js flags | `--max-old-space-size=64 --max-semi-space-size=4` |',
        '| containerd | 1.6.20~ds1 |',
        '| docker-registry | v2.8.2+ds1 |',
        '| load average at start (1/5/15 min) | 1.00 / 2.50 / 3.00 |',
        '| load average at end (1/5/15 min) | 4.00 / 5.00 / 6.25 |',
        '| run time | 61 s |',
        '',
        '## Targets',
        '',
        '| scenario | figure | target | measured | result |',
        '|---|---|---|---|---|',
        '| miss | p99 time to 404 | < 25 ms | 2.0 ms | met |',
        '| churn | p99 time to 404 | < 25 ms | 2.0 ms | **missed** |',
        '',
        '## 5. Miss (3 s)',
        '',
        'Run alone: `npm run bench -- miss`',
        '',
        'Method:',
        '',
        '- GET of unknown digests',
        '',
        '| p50 ms | p99 ms |',
        '|---|---|',
        '| 1.0 | 2.0 |',
        '',
        '| target | required | measured | result |',
        '|---|---|---|---|',
        '| p99 time to 404 | < 25 ms | 2.0 ms | met |',
        '',
        '- loaded machine',
        '',
        '## 7. Churn (3 s)',
        '',
        'Run alone: `npm run bench -- churn`',
        '',
        'Method:',
        '',
        '- GET of unknown digests',
        '',
        '| p50 ms | p99 ms |',
        '|---|---|',
        '| 1.0 | 2.0 |',
        '',
        '| target | required | measured | result |',
        '|---|---|---|---|',
        '| p99 time to 404 | < 25 ms | 2.0 ms | **missed** |',
        '',
      ].join('\n'),
    );
  });

  it('shows a failed scenario as missed with its error', () => {
    const text = renderReport({
      machine,
      scenarios: [{ ...scenario, error: 'bed did not start', tables: [], targets: [], notes: [] }],
    });
    assert.ok(text.includes('| miss | (all) |  | failed to run | **missed** |'));
    assert.match(text, /\*\*The scenario failed:\*\* `bed did not start`/);
  });

  it('verdict words', () => {
    assert.equal(verdict(true), 'met');
    assert.equal(verdict(false), '**missed**');
  });
});
