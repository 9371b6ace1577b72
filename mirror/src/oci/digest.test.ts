import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Digest } from '../store/content-store.js';
import { digestAlgorithm, digestHex, digestOf, isDigest, parseDigest, verifyDigest } from './digest.js';
import { OciError } from './errors.js';

const HEX64 = 'a'.repeat(64);
const HEX128 = '0123456789abcdef'.repeat(8);

describe('parseDigest', () => {
  const valid = [`sha256:${HEX64}`, `sha512:${HEX128}`, `sha256:${'0123456789abcdef'.repeat(4)}`];
  for (const value of valid) {
    it(`accepts ${value.slice(0, 20)}…`, () => {
      assert.equal(parseDigest(value), value);
      assert.equal(isDigest(value), true);
    });
  }

  const invalid: Array<[name: string, value: string, code: string, message: string]> = [
    ['empty', '', 'DIGEST_INVALID', 'invalid digest ""'],
    ['no colon', HEX64, 'DIGEST_INVALID', `invalid digest "${HEX64}"`],
    ['empty encoding', 'sha256:', 'DIGEST_INVALID', 'invalid digest "sha256:"'],
    ['empty algorithm', `:${HEX64}`, 'DIGEST_INVALID', `invalid digest ":${HEX64}"`],
    ['uppercase algorithm', `SHA256:${HEX64}`, 'DIGEST_INVALID', `invalid digest "SHA256:${HEX64}"`],
    ['traversal', 'sha256:../../etc/passwd', 'DIGEST_INVALID', 'invalid digest "sha256:../../etc/passwd"'],
    ['slash', `sha256:${HEX64}/x`, 'DIGEST_INVALID', `invalid digest "sha256:${HEX64}/x"`],
    [
      'short sha256',
      `sha256:${'a'.repeat(63)}`,
      'DIGEST_INVALID',
      'invalid sha256 digest: want 64 lowercase hex characters',
    ],
    [
      'long sha256',
      `sha256:${'a'.repeat(65)}`,
      'DIGEST_INVALID',
      'invalid sha256 digest: want 64 lowercase hex characters',
    ],
    [
      'uppercase hex',
      `sha256:${'A'.repeat(64)}`,
      'DIGEST_INVALID',
      'invalid sha256 digest: want 64 lowercase hex characters',
    ],
    [
      'non-hex',
      `sha256:${'g'.repeat(64)}`,
      'DIGEST_INVALID',
      'invalid sha256 digest: want 64 lowercase hex characters',
    ],
    [
      'sha512 with 64',
      `sha512:${HEX64}`,
      'DIGEST_INVALID',
      'invalid sha512 digest: want 128 lowercase hex characters',
    ],
    ['too long', `sha256:${'a'.repeat(300)}`, 'DIGEST_INVALID', 'digest is longer than 256 characters'],
    ['unknown algorithm', `md5:${'a'.repeat(32)}`, 'UNSUPPORTED', 'unsupported digest algorithm "md5"'],
    [
      'unknown composite algorithm',
      `sha256+b64u:${HEX64}`,
      'UNSUPPORTED',
      'unsupported digest algorithm "sha256+b64u"',
    ],
    ['blake3', `blake3:${HEX64}`, 'UNSUPPORTED', 'unsupported digest algorithm "blake3"'],
  ];
  for (const [name, value, code, message] of invalid) {
    it(`rejects ${name} with ${code}`, () => {
      assert.throws(
        () => parseDigest(value),
        (error: unknown) =>
          error instanceof OciError &&
          error.code === code &&
          error.status === 400 &&
          error.message === message,
      );
      assert.equal(isDigest(value), false);
    });
  }

  it('names the supported algorithms in the UNSUPPORTED detail', () => {
    assert.throws(
      () => parseDigest(`md5:${'a'.repeat(32)}`),
      (error: unknown) =>
        error instanceof OciError &&
        JSON.stringify(error.detail) === '{"algorithm":"md5","supported":["sha256","sha512"]}',
    );
  });
});

describe('digestOf / digestHex / verifyDigest', () => {
  const cases: Array<[input: string, algorithm: 'sha256' | 'sha512', want: string]> = [
    ['', 'sha256', 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['abc', 'sha256', 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'abc',
      'sha512',
      'sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    ],
  ];
  for (const [input, algorithm, want] of cases) {
    it(`${algorithm}(${JSON.stringify(input)})`, () => {
      const digest = digestOf(Buffer.from(input), algorithm);
      assert.equal(digest, want);
      assert.equal(digestHex(digest), want.slice(algorithm.length + 1));
      assert.equal(digestAlgorithm(digest), algorithm);
      assert.equal(verifyDigest(digest, Buffer.from(input)), true);
      assert.equal(verifyDigest(digest, Buffer.from(`${input}x`)), false);
    });
  }

  it('defaults to sha256', () => {
    assert.equal(digestOf(new Uint8Array([1, 2, 3])), digestOf(new Uint8Array([1, 2, 3]), 'sha256'));
  });

  it('digestHex of a typed digest', () => {
    assert.equal(digestHex(`sha256:${HEX64}` as Digest), HEX64);
  });
});
