// Runs the real Pulumi CLI for the cluster test: a file backend in the scratch folder, passphrase
// secrets, plugins only from the scratch PULUMI_HOME (installed from the build cache, never
// downloaded), and the project's program run by the language host in ./language-host.ts.
import { execFile, spawn } from 'node:child_process';
import { mkdir, symlink, writeFile, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from '../scratch.js';
import type { Counterparts } from './counterparts.js';

const run = promisify(execFile);

/** Commands that run the program, and so need the language host. */
const RUNS_PROGRAM = new Set(['up', 'preview', 'destroy', 'refresh']);

/** Result of one CLI run. */
export interface PulumiResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** A Pulumi workspace on a scratch folder. */
export interface PulumiWorkspace {
  /** The scratch project folder (Pulumi.yaml copied from the repository, stack files generated). */
  readonly projectDir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Runs `pulumi <args>`; rejects with the output when it exits non-zero. */
  pulumi(args: readonly string[], options?: { input?: string }): Promise<PulumiResult>;
  /** `pulumi stack init` with passphrase secrets, then the given config (secrets set encrypted). */
  initStack(stack: string, config: Record<string, unknown>, secrets: Record<string, string>): Promise<void>;
}

/**
 * Prepares `dir`: a project folder that is the repository's project (Pulumi.yaml copied, infra/,
 * package.json and node_modules linked) so that stack files and state stay out of the repository.
 */
export async function createPulumiWorkspace(dir: string, bins: Counterparts): Promise<PulumiWorkspace> {
  const projectDir = join(dir, 'project');
  const home = join(dir, 'pulumi-home');
  const state = join(dir, 'state');
  await mkdir(projectDir, { recursive: true });
  await mkdir(home, { recursive: true });
  await mkdir(state, { recursive: true });
  await writeFile(join(projectDir, 'Pulumi.yaml'), await readFile(join(REPO_ROOT, 'Pulumi.yaml')));
  for (const entry of ['infra', 'package.json', 'node_modules', 'tsconfig.json'])
    await symlink(join(REPO_ROOT, entry), join(projectDir, entry));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${dirname(bins.pulumi)}:${process.env.PATH ?? ''}`,
    PULUMI_HOME: home,
    PULUMI_BACKEND_URL: `file://${state}`,
    PULUMI_CONFIG_PASSPHRASE: 'peili-cluster-test',
    PULUMI_SKIP_UPDATE_CHECK: 'true',
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: 'true',
    PULUMI_SKIP_CONFIRMATIONS: 'true',
    PULUMI_COPILOT: 'false',
    NO_COLOR: '1',
  };
  delete env.PULUMI_ACCESS_TOKEN;

  const pulumi = async (args: readonly string[], options?: { input?: string }): Promise<PulumiResult> => {
    const full = ['--non-interactive', '--color=never', ...args];
    const host = RUNS_PROGRAM.has(args[0] ?? '') ? await startLanguageHost(projectDir, env) : undefined;
    try {
      if (host) full.push(`--client=127.0.0.1:${host.port}`);
      return await new Promise<PulumiResult>((resolve, reject) => {
        const child = execFile(
          bins.pulumi,
          full,
          { cwd: projectDir, env, maxBuffer: 256 << 20 },
          (err, stdout, stderr) => {
            if (err)
              reject(
                new Error(
                  `pulumi ${args.join(' ')} failed (${err.message.split('\n')[0]}):\n${stdout}\n${stderr}\n${host?.log() ?? ''}`,
                ),
              );
            else resolve({ stdout, stderr });
          },
        );
        if (options?.input !== undefined) child.stdin?.end(options.input);
        else child.stdin?.end();
      });
    } finally {
      host?.stop();
    }
  };

  // The Kubernetes provider plugin comes from the build cache.
  await run(
    bins.pulumi,
    [
      'plugin',
      'install',
      'resource',
      'kubernetes',
      `v${bins.pins.PULUMI_KUBERNETES_VERSION}`,
      '--file',
      bins.pulumiKubernetes,
    ],
    { env },
  );

  const initStack = async (
    stack: string,
    config: Record<string, unknown>,
    secrets: Record<string, string>,
  ): Promise<void> => {
    await pulumi(['stack', 'init', stack, '--secrets-provider=passphrase']);
    // stack init wrote the encryption salt into Pulumi.<stack>.yaml: keep it, add the config.
    const file = join(projectDir, `Pulumi.${stack}.yaml`);
    const current = (parse(await readFile(file, 'utf8')) ?? {}) as Record<string, unknown>;
    await writeFile(file, stringify({ ...current, config }));
    for (const [key, value] of Object.entries(secrets))
      await pulumi(['config', 'set', '--secret', '-s', stack, key], { input: value });
  };

  return { projectDir, env, pulumi, initStack };
}

interface LanguageHost {
  readonly port: number;
  log(): string;
  stop(): void;
}

function startLanguageHost(projectDir: string, env: NodeJS.ProcessEnv): Promise<LanguageHost> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'testbed/kube/language-host.ts'), projectDir],
    { cwd: projectDir, env, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m)
        resolve({
          port: Number(m[1]),
          log: () => (err ? `language host stderr:\n${err}` : ''),
          stop: () => {
            child.stdin.end();
            child.kill('SIGTERM');
          },
        });
    });
    child.once('exit', (code) =>
      reject(new Error(`language host exited (${code}) before listening:\n${err}`)),
    );
    child.once('error', reject);
  });
}
