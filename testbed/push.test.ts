import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OciLayout } from './images.js';
import { pushArgs } from './push.js';

const layout = (indexDigest?: string): OciLayout => ({
  dir: '/cache/abc',
  ref: 'v1',
  ...(indexDigest ? { indexDigest } : {}),
  topDigest: indexDigest ?? 'sha256:m',
  topMediaType: '',
  manifestDigests: [],
  images: [],
  blobs: [],
  totalSize: 0,
});

describe('pushArgs', () => {
  const cases: {
    name: string;
    layout: OciLayout;
    options: Parameters<typeof pushArgs>[2];
    flags: string[];
  }[] = [
    {
      name: 'single manifest: preserve digests, no --all',
      layout: layout(),
      options: {},
      flags: ['--preserve-digests'],
    },
    {
      name: 'index: --all by default',
      layout: layout('sha256:i'),
      options: {},
      flags: ['--all', '--preserve-digests'],
    },
    {
      name: 'index with all: false',
      layout: layout('sha256:i'),
      options: { all: false, preserveDigests: false },
      flags: [],
    },
  ];
  for (const { name, layout: l, options, flags } of cases) {
    it(name, () => {
      assert.deepEqual(pushArgs(l, '127.0.1.1:5000/test/app:v1', options), [
        'copy',
        '--quiet',
        '--dest-tls-verify=false',
        ...flags,
        'oci:/cache/abc:v1',
        'docker://127.0.1.1:5000/test/app:v1',
      ]);
    });
  }

  it('rejects a target with a scheme', () => {
    assert.throws(() => pushArgs(layout(), 'docker://h/r:t'), {
      message: 'pushImage: target must be host:port/repository:tag without a scheme, got "docker://h/r:t"',
    });
  });
});
