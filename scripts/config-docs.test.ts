import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { FLAGS } from '../mirror/src/config.js';
import { renderFlagsMarkdown, withFlagsTable, FLAGS_BEGIN, FLAGS_END } from './config-docs.js';

describe('README configuration reference', () => {
  it('is in sync with the flag table (run `npm run docs` to update it)', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    assert.equal(readme, withFlagsTable(readme));
  });

  it('lists every flag once with its environment variable', () => {
    const table = renderFlagsMarkdown();
    for (const spec of FLAGS) {
      assert.equal(table.split(`| \`--${spec.name}\` | \`${spec.env}\` |`).length, 2, spec.name);
    }
  });

  it('renders defaults, required flags and enum values', () => {
    const table = renderFlagsMarkdown([
      {
        name: 'a',
        key: 'a',
        env: 'PEILI_A',
        commands: ['registry'],
        kind: 'enum',
        default: 'x',
        values: ['x', 'y'],
        description: 'pick | one',
      },
      {
        name: 'b',
        key: 'b',
        env: 'PEILI_B',
        commands: ['configure'],
        kind: 'url-list',
        default: undefined,
        required: true,
        description: 'targets',
      },
      {
        name: 'c',
        key: 'c',
        env: 'PEILI_C',
        commands: ['registry', 'configure'],
        kind: 'string',
        default: '',
        description: 'empty',
      },
    ]);
    assert.equal(
      table,
      [
        '| flag | environment | subcommands | default | meaning |',
        '|---|---|---|---|---|',
        '| `--a` | `PEILI_A` | registry | `x` | pick \\| one (`x`, `y`) |',
        '| `--b` | `PEILI_B` | configure | required | targets |',
        '| `--c` | `PEILI_C` | registry, configure | (none) | empty |',
      ].join('\n'),
    );
  });

  it('refuses a README without markers', () => {
    assert.throws(() => withFlagsTable('no markers'), { message: 'README.md has no flag table markers' });
    assert.ok(FLAGS_BEGIN.startsWith('<!--') && FLAGS_END.startsWith('<!--'));
  });
});
