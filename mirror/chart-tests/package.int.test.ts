// `helm package` as the release workflow runs it: the archive holds the chart and nothing
// test-only, and `--app-version` becomes the image tag the packaged chart deploys.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { CHART_DIR, RELEASE, parseManifests, runHelm } from './helm.js';

/** File names in a gzipped tar archive (ustar headers; long names use the prefix field). */
function tarEntries(tgz: Buffer): string[] {
  const tar = gunzipSync(tgz);
  const names: string[] = [];
  for (let offset = 0; offset + 512 <= tar.length;) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number) =>
      header.toString('utf8', start, start + length).replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    if (header[156] === 0x30 || header[156] === 0) names.push(name);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

describe('helm package', () => {
  const out = mkdtempSync(join(tmpdir(), 'peili-chart-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('packages the chart files only, and --app-version sets the image tag', async () => {
    const result = await runHelm([
      'package',
      CHART_DIR,
      '--version',
      '1.2.3',
      '--app-version',
      '1.2.3',
      '--destination',
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const archive = join(out, 'peili-1.2.3.tgz');
    assert.deepEqual(tarEntries(readFileSync(archive)).sort(), [
      'peili/.helmignore',
      'peili/Chart.yaml',
      'peili/README.md',
      'peili/ci/talos-values.yaml',
      'peili/dashboards/peili.json',
      'peili/files/wait-for-cleanup.mjs',
      'peili/templates/NOTES.txt',
      'peili/templates/_helpers.tpl',
      'peili/templates/cleanup-hook.yaml',
      'peili/templates/daemonset.yaml',
      'peili/templates/grafana-dashboard.yaml',
      'peili/templates/peer-certificate.yaml',
      'peili/templates/service.yaml',
      'peili/templates/servicemonitor.yaml',
      'peili/values.schema.json',
      'peili/values.yaml',
    ]);

    const rendered = await runHelm(['template', RELEASE.name, archive, '--namespace', RELEASE.namespace]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const images = new Set<string>();
    for (const obj of parseManifests(rendered.stdout)) {
      const spec = (
        obj.spec as
          | { template?: { spec: { containers: { image: string }[]; initContainers?: { image: string }[] } } }
          | undefined
      )?.template?.spec;
      for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) images.add(c.image);
    }
    assert.deepEqual([...images], ['ghcr.io/peili-dev/peili:1.2.3']);
  });
});
