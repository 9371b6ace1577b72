import { isAbsolute, join, relative, sep } from 'node:path';
import { digestAlgorithm, digestHex, isDigest } from '../oci/digest.js';

/**
 * The file holding `digest` in a containerd content directory (`<contentPath>/blobs/<alg>/<hex>`),
 * or undefined when `digest` is not a well-formed sha256/sha512 digest. The digest is validated
 * before any path is built, and the result is checked to stay inside `<contentPath>/blobs`, so
 * no input can name a file elsewhere.
 */
export function blobPath(contentPath: string, digest: string): string | undefined {
  if (!isDigest(digest)) return undefined;
  const blobs = join(contentPath, 'blobs');
  const path = join(blobs, digestAlgorithm(digest), digestHex(digest));
  const inside = relative(blobs, path);
  // Belt and braces: the grammar already excludes separators and dots.
  if (inside.startsWith('..') || isAbsolute(inside) || inside.split(sep).length !== 2) return undefined;
  return path;
}
