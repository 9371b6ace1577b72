// Lints .github/workflows/release.yml, which cannot run here: triggers, least permissions, every
// action pinned to a full commit SHA, no expression expanded inside a shell script, and the image
// tag and chart appVersion taken from the same version.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from './helm.js';

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, string | boolean>;
  env?: Record<string, string>;
}
interface Workflow {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  jobs: Record<string, { permissions?: unknown; steps: Step[]; 'runs-on': string }>;
}

const text = readFileSync(join(REPO_ROOT, '.github/workflows/release.yml'), 'utf8');
const workflow = parseYaml(text) as Workflow;
const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
const step = (uses: string): Step => {
  const found = steps.find((s) => s.uses?.startsWith(`${uses}@`));
  assert.ok(found, `no step uses ${uses}`);
  return found;
};

describe('release workflow', () => {
  it('runs only on v* tags', () => {
    assert.deepEqual(workflow.on, { push: { tags: ['v*'] } });
  });

  it('has the least permissions: read the repository, write packages; no job widens them', () => {
    assert.deepEqual(workflow.permissions, { contents: 'read', packages: 'write' });
    for (const [name, job] of Object.entries(workflow.jobs)) assert.equal(job.permissions, undefined, name);
  });

  it('pins every action to a full commit SHA, with the tag in a comment', () => {
    const uses = [...text.matchAll(/^\s*(?:-\s*)?uses:\s*(\S+)(.*)$/gm)].map((m) => ({
      ref: m[1] ?? '',
      comment: (m[2] ?? '').trim(),
    }));
    assert.equal(uses.length, steps.filter((s) => s.uses).length);
    for (const u of uses) {
      assert.match(u.ref, /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+@[0-9a-f]{40}$/, u.ref);
      assert.match(u.comment, /^# v\d+\.\d+\.\d+$/, `${u.ref} lacks its version comment`);
    }
    assert.deepEqual(uses.map((u) => u.ref.split('@')[0]).sort(), [
      'actions/checkout',
      'azure/setup-helm',
      'docker/build-push-action',
      'docker/login-action',
      'docker/setup-buildx-action',
      'docker/setup-qemu-action',
    ]);
  });

  it('never expands ${{ }} inside a run script (values reach scripts through env)', () => {
    for (const s of steps) if (s.run) assert.doesNotMatch(s.run, /\$\{\{/, s.name);
  });

  it('does not keep the checkout token', () => {
    assert.equal(step('actions/checkout').with?.['persist-credentials'], false);
  });

  it('builds mirror/Dockerfile for amd64 and arm64 and pushes it to ghcr.io/<owner>/peili:<version>', () => {
    const build = step('docker/build-push-action');
    assert.equal(build.with?.file, 'mirror/Dockerfile');
    assert.ok(existsSync(join(REPO_ROOT, String(build.with?.file))));
    assert.equal(build.with?.context, '.');
    assert.equal(build.with?.platforms, 'linux/amd64,linux/arm64');
    assert.equal(build.with?.push, true);
    assert.equal(build.with?.tags, '${{ steps.meta.outputs.image }}:${{ steps.meta.outputs.version }}');
    const meta = steps.find((s) => s.id === 'meta');
    assert.ok(meta?.run?.includes('echo "image=ghcr.io/$owner/peili"'));
    assert.ok(meta?.run?.includes('echo "charts=oci://ghcr.io/$owner/charts"'));
    assert.equal(meta?.env?.OWNER, '${{ github.repository_owner }}');
    assert.deepEqual(step('docker/login-action').with, {
      registry: 'ghcr.io',
      username: '${{ github.actor }}',
      password: '${{ secrets.GITHUB_TOKEN }}',
    });
  });

  it('packages the chart with appVersion = the image tag and pushes it to oci://ghcr.io/<owner>/charts', () => {
    const chart = steps.find((s) => s.run?.includes('helm push'));
    assert.ok(chart?.run);
    assert.match(chart.run, /helm package mirror\/chart --version "\$VERSION" --app-version "\$VERSION"/);
    assert.match(chart.run, /helm push "\.chart\/peili-\$VERSION\.tgz" "\$CHARTS"/);
    assert.equal(chart.env?.VERSION, '${{ steps.meta.outputs.version }}');
    assert.equal(chart.env?.CHARTS, '${{ steps.meta.outputs.charts }}');
    // The same version output names the image tag.
    assert.match(
      String(step('docker/build-push-action').with?.tags),
      /:\$\{\{ steps\.meta\.outputs\.version \}\}$/,
    );
  });
});
