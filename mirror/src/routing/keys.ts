// Routing keys: what the cluster index is keyed by. Validated at every edge (peer protocol,
// advertiser) so the index never holds a string the mirror could not have produced.

/** The two kinds of routing key, also the `kind` label of the key metrics. */
export type KeyKind = 'digest' | 'tag';

/** Longest key accepted: registry host (≤ 259) + `/` + repository (≤ 255) + `:` + tag (≤ 128). */
export const MAX_KEY_LENGTH = 645;

const DIGEST = /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DNS_NAME =
  /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const PORT = /^[0-9]{1,5}$/;

/** True for a bare content digest key (`sha256:<64 hex>` or `sha512:<128 hex>`). */
export function isDigestKey(key: string): boolean {
  return DIGEST.test(key);
}

function isRegistryHost(value: string): boolean {
  let host = value;
  const bracket = value.lastIndexOf(']');
  const colon = value.lastIndexOf(':');
  if (colon > bracket) {
    const port = value.slice(colon + 1);
    if (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535) return false;
    host = value.slice(0, colon);
  }
  if (host.length === 0 || host.length > 253) return false;
  return DNS_NAME.test(host) || IPV6_HOST.test(host);
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
  const repository = key.slice(slash + 1, colon);
  if (repository.length === 0 || repository.length > 255) return false;
  return (
    isRegistryHost(key.slice(0, slash)) &&
    repository.split('/').every((part) => PATH_COMPONENT.test(part)) &&
    TAG.test(key.slice(colon + 1))
  );
}

/** The kind of a valid key, or undefined when `key` is neither a digest nor a tag reference. */
export function keyKind(key: string): KeyKind | undefined {
  if (isDigestKey(key)) return 'digest';
  if (isTagKey(key)) return 'tag';
  return undefined;
}
