/** What a `/v2/…` request path names; strings are decoded but not yet validated (the service does that). */
export type RegistryPath =
  | { readonly kind: 'base' }
  | { readonly kind: 'manifest'; readonly name: string; readonly reference: string }
  | { readonly kind: 'blob'; readonly name: string; readonly digest: string };

/** Route patterns used as the `handler` metric label, never the raw URL. */
export const ROUTE_PATTERNS = {
  base: '/v2/',
  manifest: '/v2/:name/manifests/:ref',
  blob: '/v2/:name/blobs/:digest',
  unknown: 'unknown',
} as const;

/** A `handler` label value. */
export type RoutePattern = (typeof ROUTE_PATTERNS)[keyof typeof ROUTE_PATTERNS];

// Longer than any valid name (255) + `/manifests/` + reference; longer paths are not ours.
const MAX_PATH_LENGTH = 1024;

function decodeSegment(segment: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  // Structure comes from the raw path only: an encoded slash, an empty or dot segment is never a
  // name component, so such paths are not routed at all (they could only be traversal attempts).
  if (
    decoded === '' ||
    decoded === '.' ||
    decoded === '..' ||
    decoded.includes('/') ||
    decoded.includes('\\')
  ) {
    return undefined;
  }
  return decoded;
}

/**
 * Parses the path of a registry request (query string already removed):
 * `/v2/` → base; `/v2/<name>/manifests/<ref>`; `/v2/<name>/blobs/<digest>`, where `<name>` may
 * contain slashes. Anything else — other endpoints, empty/dot segments, bad percent-encoding,
 * encoded slashes — is undefined (answered 404).
 */
export function parseRegistryPath(path: string): RegistryPath | undefined {
  if (path.length > MAX_PATH_LENGTH || !path.startsWith('/v2/')) return undefined;
  const rest = path.slice('/v2/'.length);
  if (rest === '') return { kind: 'base' };
  const raw = rest.split('/');
  if (raw.length < 3) return undefined;
  const segments: string[] = [];
  for (const segment of raw) {
    const decoded = decodeSegment(segment);
    if (decoded === undefined) return undefined;
    segments.push(decoded);
  }
  const last = segments.pop() as string;
  const kind = segments.pop() as string;
  const name = segments.join('/');
  if (kind === 'manifests') return { kind: 'manifest', name, reference: last };
  if (kind === 'blobs') return { kind: 'blob', name, digest: last };
  return undefined;
}

/** The `handler` label of a parsed path. */
export function routePattern(parsed: RegistryPath | undefined): RoutePattern {
  return parsed === undefined ? ROUTE_PATTERNS.unknown : ROUTE_PATTERNS[parsed.kind];
}
