import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { distributionSources } from './distribution-sources.js';

describe('distributionSources', () => {
  const cases: {
    title: string;
    labels: Record<string, string>;
    want: { registry: string; repository: string }[];
  }[] = [
    {
      title: 'one source',
      labels: { 'containerd.io/distribution.source.docker.io': 'library/nginx' },
      want: [{ registry: 'docker.io', repository: 'library/nginx' }],
    },
    {
      title: 'accumulated repositories and registries, sorted',
      labels: {
        'containerd.io/distribution.source.docker.io': 'library/app,library/alias',
        'containerd.io/distribution.source.127.0.0.1': 'test/app',
        'containerd.io/uncompressed': 'sha256:00',
      },
      want: [
        { registry: '127.0.0.1', repository: 'test/app' },
        { registry: 'docker.io', repository: 'library/alias' },
        { registry: 'docker.io', repository: 'library/app' },
      ],
    },
    {
      title: 'empty parts ignored',
      labels: {
        'containerd.io/distribution.source.': 'x',
        'containerd.io/distribution.source.ghcr.io': ',org/a,,',
      },
      want: [{ registry: 'ghcr.io', repository: 'org/a' }],
    },
    { title: 'no source labels', labels: { 'containerd.io/gc.ref.content.l.0': 'sha256:00' }, want: [] },
  ];
  for (const { title, labels, want } of cases) {
    it(title, () => assert.deepEqual(distributionSources(labels), want));
  }
});
