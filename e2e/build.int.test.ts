// The package as a user gets it from a checkout: `npm run build`, then `npx peili …` through the
// package's `bin`, with the containerd .proto files found beside the compiled adapter.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../testbed/index.js';
import { daemonNode } from '../testbed/daemon-node.js';

const run = promisify(execFile);

describe('the built peili executable', { timeout: 180_000 }, () => {
  it('builds, and npx peili runs the compiled CLI', async () => {
    await run('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT });
    const { stdout } = await run('npx', ['--no-install', 'peili', 'version'], { cwd: REPO_ROOT });
    assert.match(stdout, /^peili 0\.1\.0( \(commit [0-9a-f]{12}\))?\n$/);
  });

  it('exits 2 with a message naming the flag for a bad value', async () => {
    const failure = await run(
      daemonNode().path,
      ['dist/mirror/src/cli.js', 'registry', '--lookup-timeout=fast'],
      {
        cwd: REPO_ROOT,
      },
    ).then(
      () => assert.fail('expected a non-zero exit'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failure.code, 2);
    assert.equal(
      failure.stderr,
      'peili: --lookup-timeout: expected a duration like 20ms or 5s, got "fast"\n',
    );
  });

  it('finds the containerd protos from dist/', async () => {
    const { stdout } = await run(
      daemonNode().path,
      [
        '--input-type=module',
        '-e',
        "import('./dist/mirror/src/containerd/containerd-store.js').then((m) => console.log(m.findProtoDir()))",
      ],
      { cwd: REPO_ROOT },
    );
    assert.match(stdout.trim(), /\/containerd\/proto$/);
  });
});
