import type { TagPolicy, TagRequest } from './tag-policy.js';
import type { UpstreamProbe } from './upstream-probe.js';

/** When the mirror may resolve tags: only while the upstream is down (default), always, or never. */
export type TagResolutionMode = 'upstream-down' | 'always' | 'never';

/** Every mode, for flag parsing and messages. */
export const TAG_RESOLUTION_MODES: readonly TagResolutionMode[] = ['upstream-down', 'always', 'never'];

/** Collaborators of {@link createTagPolicy}. */
export interface TagPolicyDeps {
  readonly probe: Pick<UpstreamProbe, 'reachable'>;
}

/** Settings of {@link createTagPolicy}. */
export interface TagPolicyOptions {
  /** @default 'upstream-down' */
  readonly mode?: TagResolutionMode;
  /** Tags whose `registry/repository:tag` matches any of these are never resolved by the mirror. */
  readonly filters?: readonly RegExp[];
}

/**
 * The tag-freshness policy: `never` → always 404 (containerd asks upstream); `always` → resolve
 * unless a filter matches; `upstream-down` → resolve only when the upstream `/v2/` does not
 * answer, so tags stay fresh while it is up and pulls keep working when it is down.
 */
export function createTagPolicy(deps: TagPolicyDeps, options: TagPolicyOptions = {}): TagPolicy {
  const mode = options.mode ?? 'upstream-down';
  if (!TAG_RESOLUTION_MODES.includes(mode)) {
    throw new RangeError(
      `unknown tag resolution mode ${JSON.stringify(mode)}, expected one of ${TAG_RESOLUTION_MODES.join(', ')}`,
    );
  }
  // Stateful (global/sticky) regexes would make `test` depend on the previous call.
  const filters = (options.filters ?? []).map((f) =>
    f.global || f.sticky ? new RegExp(f.source, f.flags.replace(/[gy]/g, '')) : f,
  );
  const filtered = (request: TagRequest): boolean => {
    const name = `${request.registry}/${request.repository}:${request.tag}`;
    return filters.some((f) => f.test(name));
  };
  return {
    async allowTagResolution(request, signal) {
      if (mode === 'never' || filtered(request)) return false;
      if (mode === 'always') return true;
      return !(await deps.probe.reachable(request.registry, signal));
    },
  };
}
