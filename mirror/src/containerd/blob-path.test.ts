import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blobPath } from './blob-path.js';

const ROOT = '/var/lib/containerd/io.containerd.content.v1.content';
const HEX256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const HEX512 = 'ab'.repeat(64);

describe('blobPath', () => {
  const valid: { digest: string; want: string }[] = [
    { digest: `sha256:${HEX256}`, want: `${ROOT}/blobs/sha256/${HEX256}` },
    { digest: `sha512:${HEX512}`, want: `${ROOT}/blobs/sha512/${HEX512}` },
  ];
  for (const { digest, want } of valid) {
    it(`maps ${digest.slice(0, 16)}… into blobs/<alg>/<hex>`, () =>
      assert.equal(blobPath(ROOT, digest), want));
  }

  it('normalises a trailing slash of the content path', () => {
    assert.equal(blobPath(`${ROOT}/`, `sha256:${HEX256}`), `${ROOT}/blobs/sha256/${HEX256}`);
  });

  const rejected = [
    'sha256:../../../../etc/passwd',
    `sha256:../${HEX256.slice(3)}`,
    `sha256:${HEX256}/..`,
    `sha256:${HEX256.slice(0, 62)}/x`,
    `../sha256:${HEX256}`,
    `sha256/../../x:${HEX256}`,
    `sha256:${HEX256.toUpperCase()}`,
    `sha256:${HEX256}0`,
    `sha256:${HEX256.slice(1)}`,
    `sha512:${HEX256}`,
    `md5:${'0'.repeat(32)}`,
    `sha384:${'0'.repeat(96)}`,
    `sha256:${HEX256}\u0000`,
    `sha256:`,
    HEX256,
    '',
  ];
  for (const digest of rejected) {
    it(`rejects ${JSON.stringify(digest.length > 40 ? `${digest.slice(0, 40)}…` : digest)}`, () => {
      assert.equal(blobPath(ROOT, digest), undefined);
    });
  }
});
