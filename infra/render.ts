// `npm run render -- --stack infra|apps --out <dir>`: runs the real program offline under mocks
// with the stack's configuration and writes what `pulumi up` would apply, for review without
// cluster access: one YAML per Kubernetes object + kustomization.yaml (`kubectl kustomize <dir>`),
// the Talos patch per node, the bootstrap Helm release, the Git manifests and the stack outputs.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { loadStackConfig, type StackConfig } from './config.js';
import { buildHelmRelease, buildOciRepository } from './manifests.js';
import { runUnderMocks } from './mock-engine.js';
import { createPeiliStack, mirrorValuesFor } from './program.js';
import {
  helmReleases,
  kubernetesObjects,
  manifestFiles,
  publicOutputs,
  type KubeObject,
} from './rendered.js';
import { loadStackFile, STACKS } from './stack-files.js';

/** Placeholder of outputs that only a real run can know. */
export const LIVE_ONLY = '[known after pulumi up]';

/** Marks a folder as written by render, so a re-render may replace it. */
const MARKER = '.peili-render';

/** Renders `stack` into files (relative path → content). */
export async function renderStack(stack: string, root?: string): Promise<Map<string, string>> {
  let cfg: StackConfig | undefined;
  const run = await runUnderMocks(
    () => {
      cfg = loadStackConfig();
      return createPeiliStack(cfg);
    },
    loadStackFile(stack, root),
    { stack },
  );
  const config = cfg as StackConfig;
  const files = manifestFiles(kubernetesObjects(run));
  files.set(MARKER, `rendered from Pulumi.${stack}.yaml by npm run render; secrets are placeholders\n`);
  // Outputs read from the live cluster would only echo the mocks here: say so instead.
  const outputs = { ...publicOutputs(run), health: LIVE_ONLY, talosApplyModes: LIVE_ONLY };
  files.set('outputs.json', JSON.stringify(outputs, null, 2) + '\n');

  if (config.talos) {
    const patch = String(run.outputs.talosPatch);
    files.set('talos/patch.yaml', patch);
    const applies = run.registrations.filter(
      (r) => r.type === 'talos:machine/configurationApply:ConfigurationApply',
    );
    files.set(
      'talos/nodes.yaml',
      stringify(
        applies.map((a) => ({
          node: a.inputs.node,
          endpoint: a.inputs.endpoint,
          applyMode: a.inputs.applyMode,
          configPatches: a.inputs.configPatches,
        })),
      ),
    );
  }
  for (const release of helmReleases(run)) {
    files.set('bootstrap/values.yaml', stringify(release.values ?? {}));
    const { values: _values, ...rest } = release;
    files.set('bootstrap/release.yaml', stringify(rest));
  }
  if (config.deploy.mode === 'kustomization') {
    // What the Git path must hold: the same OCIRepository and HelmRelease, same typed values.
    const spec = {
      namespace: config.deploy.namespace,
      releaseName: config.deploy.releaseName,
      chartUrl: config.chart.url,
      chartVersion: config.chart.version,
      chartInterval: config.chart.interval,
      interval: config.deploy.interval,
      coreDns: config.deploy.coreDns,
      values: mirrorValuesFor(config),
    };
    const release = buildHelmRelease(spec);
    // In Git, Flux (not Pulumi) applies it: no Pulumi annotations, no CoreDNS HelmRelease assumed
    // (the Kustomization already waits for CoreDNS).
    const gitRelease = {
      ...release,
      metadata: { ...release.metadata, annotations: undefined },
      spec: { ...release.spec, dependsOn: undefined },
    };
    const gitFiles = manifestFiles([
      buildOciRepository(spec),
      JSON.parse(JSON.stringify(gitRelease)),
    ] as KubeObject[]);
    for (const [name, content] of gitFiles) files.set(`git/${name}`, content);
  }
  return files;
}

/** Writes `files` under `out`, replacing an earlier render but never a foreign folder. */
export function writeFiles(out: string, files: Map<string, string>): void {
  if (existsSync(out) && readdirSync(out).length > 0) {
    if (!existsSync(join(out, MARKER)))
      throw new Error(`${out} is not empty and was not written by render; choose another --out`);
    rmSync(out, { recursive: true });
  }
  for (const [name, content] of files) {
    const path = join(out, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, content);
  }
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { stack: { type: 'string' }, out: { type: 'string' } },
  });
  if (!values.stack || !(STACKS as readonly string[]).includes(values.stack)) {
    throw new Error(`--stack must be one of ${STACKS.join(', ')}`);
  }
  const out = resolve(values.out ?? join('.render', values.stack));
  const files = await renderStack(values.stack);
  writeFiles(out, files);
  console.log(`rendered stack ${values.stack}: ${files.size} files in ${out}`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
