import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  README_PATH,
  VALUES_END,
  VALUES_PATH,
  VALUES_START,
  documentedValues,
  syncReadme,
  valuesTable,
} from './gen-readme.js';

describe('chart README', () => {
  it('is in sync with values.yaml (run: npx tsx mirror/chart-tests/gen-readme.ts)', () => {
    const readme = readFileSync(README_PATH, 'utf8');
    assert.equal(syncReadme(readme, readFileSync(VALUES_PATH, 'utf8')), readme);
  });

  it('shows helm install and the Talos values', () => {
    const readme = readFileSync(README_PATH, 'utf8');
    assert.match(readme, /helm install peili oci:\/\/ghcr\.io\/peili-dev\/charts\/peili/);
    assert.match(readme, /containerdRegistryConfigPath: \/etc\/cri\/conf\.d\/hosts/);
  });
});

describe('gen-readme', () => {
  const values = [
    'image:',
    '  # -- Image repository.',
    '  repository: ghcr.io/x/y',
    '  # -- Tag; empty means',
    '  # the appVersion.',
    '  tag: ""',
    '',
    '# -- Resources | limits.',
    'resources:',
    '  requests:',
    '    cpu: 50m',
    '# -- Ports.',
    'ports: [1, 2]',
    '',
  ].join('\n');

  it('reads each `# --` comment, continued lines included, with the default and type', () => {
    assert.deepEqual(documentedValues(values), [
      { key: 'image.repository', type: 'string', default: 'ghcr.io/x/y', description: 'Image repository.' },
      { key: 'image.tag', type: 'string', default: '', description: 'Tag; empty means the appVersion.' },
      {
        key: 'resources',
        type: 'object',
        default: { requests: { cpu: '50m' } },
        description: 'Resources | limits.',
      },
      { key: 'ports', type: 'list', default: [1, 2], description: 'Ports.' },
    ]);
  });

  it('renders a markdown table with pipes escaped', () => {
    assert.equal(
      valuesTable(documentedValues(values)),
      [
        '| Key | Type | Default | Description |',
        '|---|---|---|---|',
        '| `image.repository` | string | `"ghcr.io/x/y"` | Image repository. |',
        '| `image.tag` | string | `""` | Tag; empty means the appVersion. |',
        '| `resources` | object | `{"requests":{"cpu":"50m"}}` | Resources \\| limits. |',
        '| `ports` | list | `[1,2]` | Ports. |',
      ].join('\n'),
    );
  });

  it('fails naming an undocumented leaf', () => {
    assert.throws(() => documentedValues('image:\n  # -- ok\n  a: 1\n  b: 2\n'), {
      message: 'values.yaml: image.b has no "# -- " description',
    });
  });

  it('replaces only the part between the markers', () => {
    const readme = `# Title\n\n${VALUES_START}\nold\n${VALUES_END}\n\nAfter.\n`;
    assert.equal(
      syncReadme(readme, '# -- A.\na: 1\n'),
      `# Title\n\n${VALUES_START}\n| Key | Type | Default | Description |\n|---|---|---|---|\n| \`a\` | int | \`1\` | A. |\n${VALUES_END}\n\nAfter.\n`,
    );
    assert.throws(() => syncReadme('# no markers', 'a: 1'), {
      message: `README.md: the markers ${VALUES_START} and ${VALUES_END} are missing`,
    });
  });
});
