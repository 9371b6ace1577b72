import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT, STACKS } from './stack-files.js';

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}

describe('.github/workflows/preview.yml', () => {
  const wf = parse(readFileSync(join(REPO_ROOT, '.github/workflows/preview.yml'), 'utf8')) as {
    on: Record<string, unknown>;
    permissions: Record<string, string>;
    jobs: Record<string, { strategy: { matrix: { stack: string[] } }; steps: Step[] }>;
  };
  const job = wf.jobs.preview;

  it('previews every stack on every pull request', () => {
    assert.deepEqual(Object.keys(wf.on), ['pull_request']);
    assert.deepEqual(job?.strategy.matrix.stack, [...STACKS]);
    const pulumi = job?.steps.find((s) => s.uses?.startsWith('pulumi/actions@'));
    assert.equal(pulumi?.with?.command, 'preview');
    assert.equal(pulumi?.with?.['comment-on-pr'], true);
    assert.equal(pulumi?.with?.['stack-name'], '${{ vars.PULUMI_STACK_PREFIX }}${{ matrix.stack }}');
    assert.ok(
      job?.steps.some(
        (s) => s.run === 'npm run render -- --stack ${{ matrix.stack }} --out .render/${{ matrix.stack }}',
      ),
    );
  });

  it('pins every action to a commit and asks only for what it uses', () => {
    for (const s of job?.steps ?? []) if (s.uses) assert.match(s.uses, /^[\w-]+\/[\w-]+@[0-9a-f]{40}$/);
    assert.deepEqual(wf.permissions, { contents: 'read', 'pull-requests': 'write' });
  });
});
