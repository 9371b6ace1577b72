import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRegistryPath, routePattern, type RegistryPath } from './registry-path.js';

describe('parseRegistryPath', () => {
  const D = `sha256:${'a'.repeat(64)}`;
  const cases: Array<[path: string, want: RegistryPath | undefined, pattern: string]> = [
    ['/v2/', { kind: 'base' }, '/v2/'],
    [
      '/v2/nginx/manifests/1.27',
      { kind: 'manifest', name: 'nginx', reference: '1.27' },
      '/v2/:name/manifests/:ref',
    ],
    [
      '/v2/a/b/c/manifests/latest',
      { kind: 'manifest', name: 'a/b/c', reference: 'latest' },
      '/v2/:name/manifests/:ref',
    ],
    [
      `/v2/library/nginx/manifests/${D}`,
      { kind: 'manifest', name: 'library/nginx', reference: D },
      '/v2/:name/manifests/:ref',
    ],
    [
      `/v2/library/nginx/blobs/${D}`,
      { kind: 'blob', name: 'library/nginx', digest: D },
      '/v2/:name/blobs/:digest',
    ],
    // A repository may itself contain a `blobs` or `manifests` component: the last two segments decide.
    [`/v2/a/blobs/blobs/${D}`, { kind: 'blob', name: 'a/blobs', digest: D }, '/v2/:name/blobs/:digest'],
    [
      '/v2/a/manifests/manifests/v1',
      { kind: 'manifest', name: 'a/manifests', reference: 'v1' },
      '/v2/:name/manifests/:ref',
    ],
    // Percent-decoding happens per segment; the service validates what comes out.
    [
      `/v2/a%2Db/blobs/sha256%3A${'a'.repeat(64)}`,
      { kind: 'blob', name: 'a-b', digest: D },
      '/v2/:name/blobs/:digest',
    ],
    ['/v2/Bad/manifests/-x', { kind: 'manifest', name: 'Bad', reference: '-x' }, '/v2/:name/manifests/:ref'],
    ['/v2', undefined, 'unknown'],
    ['/v2//', undefined, 'unknown'],
    ['/v2/_catalog', undefined, 'unknown'],
    ['/v2/nginx/tags/list', undefined, 'unknown'],
    ['/v2/nginx/blobs/uploads/', undefined, 'unknown'],
    [`/v2/blobs/${D}`, undefined, 'unknown'],
    ['/v2/nginx/manifests/', undefined, 'unknown'],
    ['/v2/nginx/manifests', undefined, 'unknown'],
    ['/v2/nginx/referrers/x', undefined, 'unknown'],
    [`/v2/../etc/blobs/${D}`, undefined, 'unknown'],
    [`/v2/./a/blobs/${D}`, undefined, 'unknown'],
    [`/v2/%2e%2e/blobs/${D}`, undefined, 'unknown'],
    [`/v2/%2E/blobs/${D}`, undefined, 'unknown'],
    [`/v2/a%2fb/blobs/${D}`, undefined, 'unknown'],
    [`/v2/a%5Cb/blobs/${D}`, undefined, 'unknown'],
    [`/v2/a//b/blobs/${D}`, undefined, 'unknown'],
    [`/v2/a/blobs/..`, undefined, 'unknown'],
    ['/v2/a/blobs/%ZZ', undefined, 'unknown'],
    ['/v2/a/blobs/%E0%A4%A', undefined, 'unknown'],
    ['/v3/a/blobs/x', undefined, 'unknown'],
    ['/V2/a/blobs/x', undefined, 'unknown'],
    ['v2/a/blobs/x', undefined, 'unknown'],
    [`/v2/${'a/'.repeat(600)}blobs/${D}`, undefined, 'unknown'],
  ];
  for (const [path, want, pattern] of cases) {
    it(`${path.slice(0, 80)} → ${want ? want.kind : 'undefined'}`, () => {
      const parsed = parseRegistryPath(path);
      assert.deepEqual(parsed, want);
      assert.equal(routePattern(parsed), pattern);
    });
  }
});
