// Routing keys: what the cluster index is keyed by. Validated at every edge (peer protocol,
// advertiser) so the index never holds a string the mirror could not have produced. The grammar
// is the OCI one in `oci/`, so a key is valid exactly when the registry API would accept its parts.
import { isDigest } from '../oci/digest.js';
import { isRegistryHost, isRepository, isTag } from '../oci/reference.js';

/** The two kinds of routing key, also the `kind` label of the key metrics. */
export type KeyKind = 'digest' | 'tag';

/** Longest key accepted: registry host (≤ 259) + `/` + repository (≤ 255) + `:` + tag (≤ 128). */
export const MAX_KEY_LENGTH = 645;

/** True for a bare content digest key (`sha256:<64 hex>` or `sha512:<128 hex>`). */
export function isDigestKey(key: string): boolean {
  return isDigest(key);
}

/**
 * True for a tag key `registry/repository:tag` as containerd names images
 * (`docker.io/library/nginx:1.27`, `127.0.0.1:5000/test/app:v1`). The registry part is required.
 */
export function isTagKey(key: string): boolean {
  if (key.length > MAX_KEY_LENGTH) return false;
  const slash = key.indexOf('/');
  if (slash <= 0) return false;
  const colon = key.lastIndexOf(':');
  if (colon <= slash) return false;
  return (
    isRegistryHost(key.slice(0, slash)) &&
    isRepository(key.slice(slash + 1, colon)) &&
    isTag(key.slice(colon + 1))
  );
}

/** The kind of a valid key, or undefined when `key` is neither a digest nor a tag reference. */
export function keyKind(key: string): KeyKind | undefined {
  if (isDigestKey(key)) return 'digest';
  if (isTagKey(key)) return 'tag';
  return undefined;
}
