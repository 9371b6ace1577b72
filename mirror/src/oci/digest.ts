import { createHash } from 'node:crypto';
import { OciError } from './errors.js';

/** A content digest such as `sha256:<64 hex>`; always validated before it is used as a key or path. */
export type Digest = `${string}:${string}`;

/** Digest algorithms the mirror serves, with the length of their lowercase hex encoding. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;

/** An algorithm the mirror can verify. */
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

// The OCI image spec's digest grammar: algorithm components joined by separators, then an encoding.
const DIGEST_GRAMMAR = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const LOWER_HEX = /^[a-f0-9]+$/;
// Anything longer is not a digest we could serve; bounding it keeps error details small.
const MAX_DIGEST_LENGTH = 256;

function isKnownAlgorithm(algorithm: string): algorithm is DigestAlgorithm {
  return Object.hasOwn(DIGEST_ALGORITHMS, algorithm);
}

/**
 * Validates a digest string and returns it typed. A well-formed digest of an algorithm the mirror
 * does not implement is UNSUPPORTED (400); anything else malformed — including a registered
 * algorithm with an encoding of the wrong length or case — is DIGEST_INVALID (400).
 */
export function parseDigest(value: string): Digest {
  if (value.length > MAX_DIGEST_LENGTH) {
    throw new OciError('DIGEST_INVALID', {
      message: `digest is longer than ${MAX_DIGEST_LENGTH} characters`,
    });
  }
  const match = DIGEST_GRAMMAR.exec(value);
  if (match === null) {
    throw new OciError('DIGEST_INVALID', { message: `invalid digest ${JSON.stringify(value)}` });
  }
  const [, algorithm = '', encoded = ''] = match;
  if (!isKnownAlgorithm(algorithm)) {
    throw new OciError('UNSUPPORTED', {
      message: `unsupported digest algorithm ${JSON.stringify(algorithm)}`,
      detail: { algorithm, supported: Object.keys(DIGEST_ALGORITHMS) },
    });
  }
  const length = DIGEST_ALGORITHMS[algorithm];
  if (encoded.length !== length || !LOWER_HEX.test(encoded)) {
    throw new OciError('DIGEST_INVALID', {
      message: `invalid ${algorithm} digest: want ${length} lowercase hex characters`,
    });
  }
  return value as Digest;
}

/** True when `value` is a digest `parseDigest` accepts. */
export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** The algorithm of a validated digest. */
export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  if (!isKnownAlgorithm(algorithm))
    throw new OciError('UNSUPPORTED', {
      message: `unsupported digest algorithm ${JSON.stringify(algorithm)}`,
    });
  return algorithm;
}

/** The hex part of a validated digest (what containerd uses as the blob's file name). */
export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

/** The digest of `bytes` (sha256 unless another supported algorithm is asked for). */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** True when `bytes` hash to `digest` under the digest's own algorithm. */
export function verifyDigest(digest: Digest, bytes: Uint8Array): boolean {
  return digestOf(bytes, digestAlgorithm(digest)) === digest;
}
