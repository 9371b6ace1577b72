// Private registries: content of a registry listed in `--private-registries` is served only to a
// request that proves, to the upstream itself, that it may pull that object. containerd sends no
// credentials to a mirror until challenged, so an anonymous request gets the upstream's own
// challenge (401 + its `WWW-Authenticate`, from a cached anonymous HEAD); containerd then gets a
// token from the realm (or uses basic credentials) and retries with `Authorization`, which is
// checked with one HEAD of the same object upstream, cached briefly per credential and object.
import { createHash } from 'node:crypto';
import { OciError } from '../oci/errors.js';
import { parseDigest } from '../oci/digest.js';
import { normalizeRegistry, parseRepository, parseTag, upstreamBaseUrl } from '../oci/reference.js';

/** What {@link AccessControl.authorize} needs to know about one registry request. */
export interface AccessRequest {
  /** The `ns` parameter; undefined when the client sent none. */
  readonly registry: string | undefined;
  readonly repository: string;
  readonly kind: 'manifests' | 'blobs';
  /** A tag or digest (manifests), a digest (blobs). */
  readonly reference: string;
  /** The request carries the peer loop guard. */
  readonly fromPeer: boolean;
  /** The peer request's signature was verified (peer authentication is on and it matched). */
  readonly peerAuthenticated: boolean;
  /** The client's `Authorization` header, if any. */
  readonly authorization: string | undefined;
}

/**
 * Decides which content a request may see: `public` (everything but private-only content) or
 * `private` (the request proved access upstream, or is an authenticated peer asking on behalf of
 * one). Throws OciError 401 with the upstream's challenge, or 404 so containerd falls back.
 */
export interface AccessControl {
  authorize(request: AccessRequest, signal: AbortSignal): Promise<'public' | 'private'>;
  /** True when `registry` (an `ns` value) is listed as private. */
  isPrivate(registry: string | undefined): boolean;
}

/** Collaborators of {@link createUpstreamAccess}. */
export interface UpstreamAccessDeps {
  /** HTTP client; the global fetch by default. */
  readonly fetch?: typeof fetch;
  /** Clock in ms; `Date.now` by default. */
  readonly now?: () => number;
}

/** Tunables of {@link createUpstreamAccess}; defaults in {@link UPSTREAM_ACCESS_DEFAULTS}. */
export interface UpstreamAccessOptions {
  /** Registry hosts whose content is private (`ghcr.io`, `registry.example.com:5000`). */
  readonly registries: readonly string[];
  /** Base URLs per registry host, as for the upstream probe (tests, special registries). */
  readonly overrides?: Readonly<Record<string, string>>;
  /** Budget of one upstream HEAD, in ms. */
  readonly timeout?: number;
  /** How long an upstream challenge is reused, in ms. */
  readonly challengeTtl?: number;
  /** How long an accepted credential is reused for the same object, in ms. */
  readonly grantTtl?: number;
  /** How long a refused credential is remembered (so a retry storm does not hit upstream), in ms. */
  readonly denyTtl?: number;
  /** Most cache entries kept (each cache). */
  readonly cacheSize?: number;
}

/** Defaults of {@link UpstreamAccessOptions}. */
export const UPSTREAM_ACCESS_DEFAULTS = Object.freeze({
  timeout: 3_000,
  challengeTtl: 300_000,
  grantTtl: 60_000,
  denyTtl: 5_000,
  cacheSize: 10_000,
});

/** containerd's Accept for manifests: a HEAD without it may be answered 404 for OCI manifests. */
const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  '*/*',
].join(', ');

/** A bounded map whose entries expire. */
class ExpiringCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  constructor(
    private readonly capacity: number,
    private readonly now: () => number,
  ) {}
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
  set(key: string, value: V, ttl: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, until: this.now() + ttl });
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }
}

/** What an anonymous HEAD upstream said about an object. */
type Challenge = { readonly kind: 'open' } | { readonly kind: 'challenge'; readonly header: string };

function notServed(message: string): OciError {
  return new OciError('NAME_UNKNOWN', { message });
}

/** Creates the access control of `options.registries` against their upstreams. */
export function createUpstreamAccess(
  deps: UpstreamAccessDeps,
  options: UpstreamAccessOptions,
): AccessControl {
  const opts = { ...UPSTREAM_ACCESS_DEFAULTS, ...options };
  const doFetch = deps.fetch ?? fetch;
  const now = deps.now ?? Date.now;
  const privateHosts = new Set(opts.registries.map((r) => normalizeRegistry(r).toLowerCase()));
  const challenges = new ExpiringCache<Challenge>(opts.cacheSize, now);
  const grants = new ExpiringCache<boolean>(opts.cacheSize, now);

  const isPrivate = (registry: string | undefined): boolean =>
    registry !== undefined && privateHosts.has(normalizeRegistry(registry).toLowerCase());

  /** HEAD of the object upstream; the status, or undefined when the upstream did not answer. */
  async function head(
    request: AccessRequest & { registry: string },
    authorization: string | undefined,
    signal: AbortSignal,
  ): Promise<{ status: number; challenge: string | null } | undefined> {
    const url = `${upstreamBaseUrl(request.registry, opts.overrides)}/v2/${request.repository}/${request.kind}/${request.reference}`;
    const headers: Record<string, string> = {};
    if (request.kind === 'manifests') headers.accept = MANIFEST_ACCEPT;
    if (authorization !== undefined) headers.authorization = authorization;
    try {
      const response = await doFetch(url, {
        method: 'HEAD',
        headers,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(opts.timeout)]),
      });
      await response.body?.cancel().catch(() => {});
      return { status: response.status, challenge: response.headers.get('www-authenticate') };
    } catch (error) {
      if (signal.aborted) throw error;
      return undefined;
    }
  }

  /** The upstream's challenge for this repository (or that it is open), cached per repository. */
  async function challengeFor(
    request: AccessRequest & { registry: string },
    signal: AbortSignal,
  ): Promise<Challenge | undefined> {
    const key = `${request.registry}\n${request.repository}`;
    const cached = challenges.get(key);
    if (cached) return cached;
    const answer = await head(request, undefined, signal);
    if (answer === undefined) return undefined;
    let challenge: Challenge | undefined;
    if (answer.status === 401 && answer.challenge)
      challenge = { kind: 'challenge', header: answer.challenge };
    else if (answer.status >= 200 && answer.status < 400) challenge = { kind: 'open' };
    // Anything else (404, 5xx, 401 without a challenge) says nothing reusable.
    if (challenge) challenges.set(key, challenge, opts.challengeTtl);
    return challenge;
  }

  /** Whether upstream lets `authorization` HEAD this object; cached per credential and object. */
  async function granted(
    request: AccessRequest & { registry: string },
    authorization: string,
    signal: AbortSignal,
  ): Promise<boolean | undefined> {
    const key = createHash('sha256')
      .update(
        `${authorization}\n${request.registry}\n${request.repository}\n${request.kind}\n${request.reference}`,
      )
      .digest('hex');
    const cached = grants.get(key);
    if (cached !== undefined) return cached;
    const answer = await head(request, authorization, signal);
    if (answer === undefined) return undefined;
    // A redirect (to blob storage) is an authorized answer too.
    const ok = answer.status >= 200 && answer.status < 400;
    grants.set(key, ok, ok ? opts.grantTtl : opts.denyTtl);
    return ok;
  }

  return {
    isPrivate,
    async authorize(request, signal) {
      const { registry } = request;
      if (registry === undefined || !isPrivate(registry)) return 'public';
      // Validated before any of it goes into an upstream URL (throws the OCI 400s).
      parseRepository(request.repository);
      if (request.kind === 'blobs' || request.reference.includes(':')) parseDigest(request.reference);
      else parseTag(request.reference);
      const scoped = { ...request, registry };
      if (request.fromPeer) {
        // The asking daemon checked its client; only an authenticated daemon is believed.
        if (request.peerAuthenticated) return 'private';
        throw notServed(`content of ${registry} is served to authenticated peers only`);
      }
      if (request.authorization === undefined) {
        const challenge = await challengeFor(scoped, signal);
        if (challenge === undefined) throw notServed(`the upstream of ${registry} did not answer`);
        if (challenge.kind === 'open') return 'private';
        throw new OciError('UNAUTHORIZED', {
          message: `${registry} requires credentials; prove access upstream`,
          headers: { 'www-authenticate': challenge.header },
        });
      }
      const ok = await granted(scoped, request.authorization, signal);
      if (ok === undefined) throw notServed(`the upstream of ${registry} did not answer`);
      // 404, not 401: containerd then asks the upstream itself, which has the last word.
      if (!ok) throw notServed(`the upstream of ${registry} refused these credentials`);
      return 'private';
    },
  };
}
