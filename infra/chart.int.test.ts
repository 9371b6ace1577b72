// The values the stacks produce, rendered by the real chart with the real helm binary: the
// DaemonSet the health output and the Kustomization health check name must exist under that
// name, and the ports and paths the program reports must be the ones the chart uses.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CHART_DIR, parseManifests, runHelm, type K8sObject } from '../mirror/chart-tests/helm.js';
import { loadStackConfig, type StackConfig } from './config.js';
import { runUnderMocks } from './mock-engine.js';
import { createPeiliStack, mirrorValuesFor } from './program.js';
import { loadStackFile, STACKS } from './stack-files.js';

interface Container {
  name: string;
  args?: string[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
}

describe('stack values rendered by the chart', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'peili-chart-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const stack of STACKS) {
    it(
      `stack ${stack}: the DaemonSet, ports and paths the program relies on`,
      { timeout: 120_000 },
      async () => {
        let cfg: StackConfig | undefined;
        const run = await runUnderMocks(
          () => {
            cfg = loadStackConfig();
            return createPeiliStack(cfg);
          },
          loadStackFile(stack),
          { stack },
        );
        const config = cfg as StackConfig;
        const valuesFile = join(dir, `${stack}.yaml`);
        writeFileSync(valuesFile, stringify(mirrorValuesFor(config)));
        const { namespace, releaseName } = config.deploy;
        const result = await runHelm([
          'template',
          releaseName,
          CHART_DIR,
          '--namespace',
          namespace,
          '-f',
          valuesFile,
        ]);
        assert.equal(result.code, 0, result.stderr);
        const objects = parseManifests(result.stdout);

        const ds = objects.filter(
          (o: K8sObject) => o.kind === 'DaemonSet' && !o.metadata.annotations?.['helm.sh/hook'],
        );
        assert.deepEqual(
          ds.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
          [`${namespace}/${releaseName}`],
        );
        const pod = (
          ds[0]?.spec as { template: { spec: { containers: Container[]; initContainers?: Container[] } } }
        ).template.spec;
        const hostPorts = pod.containers
          .flatMap((c) => c.ports ?? [])
          .filter((p) => p.hostPort !== undefined);
        assert.deepEqual(
          hostPorts.map((p) => p.hostPort),
          [run.outputs.hostPort],
        );
        // Talos's registry config points containerd at the mirror: the chart writes no hosts.toml.
        assert.equal(pod.initContainers, undefined);
        const values = run.outputs as { mirroredRegistries: string[] };
        const registryArgs = pod.containers.flatMap((c) => c.args ?? []).join(' ');
        for (const registry of values.mirroredRegistries)
          assert.match(registryArgs, new RegExp(registry.replace(/\./g, '\\.')));

        const monitors = objects.filter((o) => o.kind === 'ServiceMonitor');
        const sm = (config.values.serviceMonitor ?? {}) as {
          enabled?: boolean;
          labels?: Record<string, string>;
        };
        assert.equal(monitors.length, sm.enabled ? 1 : 0);
        for (const [k, v] of Object.entries(sm.labels ?? {})) {
          assert.equal(monitors[0]?.metadata.labels?.[k], v);
        }
      },
    );
  }
});
