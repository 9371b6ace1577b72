import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, runCli, type CliDeps } from './cli.js';
import type { RegistryConfig } from './config.js';
import { usage } from './config.js';
import { PEILI_HEADER } from './hosts/index.js';
import { formatVersion, readGitCommit, versionInfo } from './version.js';

const here = dirname(fileURLToPath(import.meta.url));
const scratch = await mkdtemp(join(tmpdir(), 'peili-cli-'));
after(() => rm(scratch, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  logs: Record<string, unknown>[];
}

async function run(argv: string[], deps: CliDeps = {}, env: Record<string, string> = {}): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await runCli(argv, env, { stdout, stderr }, deps);
  // pino writes asynchronously to a stream; let it flush.
  await new Promise((resolve) => setImmediate(resolve));
  const logs = out.startsWith('{')
    ? out
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    : [];
  return { code, stdout: out, stderr: err, logs };
}

const noContainerd: CliDeps = {
  containerdVersion: () => Promise.reject(new Error('connect ENOENT /x.sock')),
};

describe('runCli', () => {
  it('version', async () => {
    const result = await run(['version']);
    assert.equal(result.code, EXIT_OK);
    assert.equal(result.stdout, formatVersion(versionInfo()) + '\n');
    assert.match(result.stdout, /^peili 0\.1\.0/);
  });

  it('version with PEILI_GIT_COMMIT', async () => {
    const result = await run(['version'], {}, { PEILI_GIT_COMMIT: '0123456789abcdef0123' });
    assert.equal(result.stdout, 'peili 0.1.0 (commit 0123456789ab)\n');
  });

  it('--help prints the usage of the subcommand', async () => {
    const result = await run(['configure', '--help']);
    assert.equal(result.code, EXIT_OK);
    assert.equal(result.stdout, usage('configure'));
  });

  const configErrors: [string[], string][] = [
    [
      ['registry', '--lookup-timeout=fast'],
      'peili: --lookup-timeout: expected a duration like 20ms or 5s, got "fast"\n',
    ],
    [['configure'], 'peili: --mirror-targets: required (or set PEILI_MIRROR_TARGETS)\n'],
    [['nope'], 'peili: unknown subcommand "nope"; expected one of registry, configure, cleanup, version\n'],
  ];
  for (const [argv, message] of configErrors) {
    it(`exit 2: ${argv.join(' ')}`, async () => {
      const result = await run(argv);
      assert.deepEqual([result.code, result.stdout, result.stderr], [EXIT_CONFIG, '', message]);
    });
  }

  it('configure with an explicit version writes dial_timeout; cleanup restores', async () => {
    const configPath = join(scratch, 'explicit');
    await mkdir(join(configPath, 'docker.io'), { recursive: true });
    await writeFile(join(configPath, 'docker.io', 'hosts.toml'), 'server = "https://registry-1.docker.io"\n');
    const result = await run(
      [
        'configure',
        `--config-path=${configPath}`,
        '--mirror-targets=http://127.0.4.1:29999',
        '--mirrored-registries=docker.io',
        '--containerd-version=1.7.2',
        '--dial-timeout=150ms',
      ],
      { containerdVersion: () => assert.fail('must not ask containerd when the version is given') },
    );
    assert.equal(result.code, EXIT_OK, result.stdout + result.stderr);
    assert.equal(
      await readFile(join(configPath, 'docker.io', 'hosts.toml'), 'utf8'),
      `${PEILI_HEADER}\nserver = "https://registry-1.docker.io"\n\n[host."http://127.0.4.1:29999"]\ncapabilities = [ "pull", "resolve" ]\ndial_timeout = "150ms"\n`,
    );
    assert.deepEqual(
      result.logs.map((l) => [l.level, l.msg, l.folders]),
      [[30, 'hosts.toml written', ['docker.io']]],
    );
    const cleaned = await run(['cleanup', `--config-path=${configPath}`]);
    assert.equal(cleaned.code, EXIT_OK);
    assert.equal(cleaned.logs[0]!.msg, 'backup restored');
    assert.equal(
      await readFile(join(configPath, 'docker.io', 'hosts.toml'), 'utf8'),
      'server = "https://registry-1.docker.io"\n',
    );
  });

  it('configure asks containerd for its version; unknown means no dial_timeout and a warning', async () => {
    const asked = join(scratch, 'asked');
    const detected = await run(
      ['configure', `--config-path=${asked}`, '--mirror-targets=http://127.0.4.1:1'],
      {
        containerdVersion: (socket) =>
          Promise.resolve(socket === '/run/containerd/containerd.sock' ? 'v2.0.1' : 'wrong'),
      },
    );
    assert.equal(detected.code, EXIT_OK);
    assert.match(await readFile(join(asked, '_default', 'hosts.toml'), 'utf8'), /dial_timeout = "200ms"/);

    const unknown = join(scratch, 'unknown');
    const result = await run(
      ['configure', `--config-path=${unknown}`, '--mirror-targets=http://127.0.4.1:1'],
      noContainerd,
    );
    assert.equal(result.code, EXIT_OK);
    assert.doesNotMatch(await readFile(join(unknown, '_default', 'hosts.toml'), 'utf8'), /dial_timeout/);
    assert.deepEqual(
      result.logs.map((l) => [l.level, l.msg]),
      [
        [40, 'containerd version unknown; writing hosts.toml for containerd 1.6 (no dial_timeout)'],
        [30, 'hosts.toml written'],
      ],
    );
  });

  it('runtime failure: exit 1 with a JSON error log', async () => {
    const configPath = join(scratch, 'refused');
    await mkdir(join(configPath, '_backup'), { recursive: true });
    const result = await run(
      ['configure', `--config-path=${configPath}`, '--mirror-targets=http://127.0.4.1:1'],
      noContainerd,
    );
    assert.equal(result.code, EXIT_RUNTIME);
    const last = result.logs.at(-1)!;
    assert.equal(last.level, 50);
    assert.match(String(last.msg), /_backup exists but has no \.peili-backup-complete/);
  });

  it('registry dispatches to runRegistry with the parsed config', async () => {
    let seen: RegistryConfig | undefined;
    const result = await run(['registry', '--advertise-host=127.0.4.9', '--log-level=warn'], {
      runRegistry: (config) => {
        seen = config;
        return Promise.resolve();
      },
    });
    assert.equal(result.code, EXIT_OK);
    assert.equal(seen?.advertiseHost, '127.0.4.9');
    assert.equal(result.stdout, ''); // the 'starting' line is info, below warn
  });

  it('readGitCommit follows refs and packed-refs', async () => {
    const git = join(scratch, 'git');
    await mkdir(join(git, 'refs', 'heads'), { recursive: true });
    await writeFile(join(git, 'HEAD'), 'ref: refs/heads/main\n');
    await writeFile(join(git, 'packed-refs'), `# pack-refs\n${'a'.repeat(40)} refs/heads/main\n`);
    assert.equal(readGitCommit(git), 'a'.repeat(40));
    await writeFile(join(git, 'refs', 'heads', 'main'), `${'b'.repeat(40)}\n`);
    assert.equal(readGitCommit(git), 'b'.repeat(40));
    assert.equal(readGitCommit(join(scratch, 'nowhere')), undefined);
  });
});

describe('the peili executable (child process)', () => {
  async function exec(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'cli.ts'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEILI_LOG_LEVEL: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  it('starts with a shebang', async () => {
    assert.match(await readFile(join(here, 'cli.ts'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });

  it('exit codes 2 and 0 from the real process', async () => {
    const bad = await exec(['configure', '--dial-timeout=soon', '--mirror-targets=http://127.0.4.1:1']);
    assert.deepEqual(bad, {
      code: 2,
      stdout: '',
      stderr: 'peili: --dial-timeout: expected a duration like 20ms or 5s, got "soon"\n',
    });
    const configPath = join(scratch, 'exec');
    const good = await exec([
      'configure',
      '--config-path',
      configPath,
      '--mirror-targets',
      'http://127.0.4.1:29999',
      '--containerd-version',
      '1.6.20',
    ]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(JSON.parse(good.stdout.trim().split('\n').at(-1)!).msg, 'hosts.toml written');
    assert.match(await readFile(join(configPath, '_default', 'hosts.toml'), 'utf8'), /^# Written by peili/);
  });
});
