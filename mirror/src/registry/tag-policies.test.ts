import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createTagPolicy, type TagResolutionMode } from './tag-policies.js';

/** A probe fake answering a fixed reachability and recording the registries it was asked about. */
function fixedProbe(reachable: boolean): { reachable: (r: string) => Promise<boolean>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    reachable: async (registry: string) => {
      asked.push(registry);
      return reachable;
    },
  };
}

describe('createTagPolicy', () => {
  const nginx = { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' };
  const app = { registry: '127.0.0.1:5000', repository: 'test/app', tag: 'v1' };
  const cases: {
    mode?: TagResolutionMode;
    filters?: RegExp[];
    upstreamUp: boolean;
    request: typeof nginx;
    want: boolean;
    probed: boolean;
  }[] = [
    { mode: 'never', upstreamUp: false, request: nginx, want: false, probed: false },
    { mode: 'never', upstreamUp: true, request: nginx, want: false, probed: false },
    { mode: 'always', upstreamUp: true, request: nginx, want: true, probed: false },
    { mode: 'always', upstreamUp: false, request: nginx, want: true, probed: false },
    { mode: 'always', filters: [/:latest$/], upstreamUp: false, request: nginx, want: false, probed: false },
    { mode: 'always', filters: [/:latest$/], upstreamUp: false, request: app, want: true, probed: false },
    { mode: 'upstream-down', upstreamUp: true, request: nginx, want: false, probed: true },
    { mode: 'upstream-down', upstreamUp: false, request: nginx, want: true, probed: true },
    { upstreamUp: false, request: app, want: true, probed: true },
    { upstreamUp: true, request: app, want: false, probed: true },
    {
      mode: 'upstream-down',
      filters: [/^docker\.io\/library\/nginx:/],
      upstreamUp: false,
      request: nginx,
      want: false,
      probed: false,
    },
    {
      mode: 'upstream-down',
      filters: [/^ghcr\.io\//, /:v1$/g],
      upstreamUp: false,
      request: app,
      want: false,
      probed: false,
    },
  ];
  for (const c of cases) {
    const name = `${c.mode ?? '(default)'} filters=[${(c.filters ?? []).join(' ')}] upstream ${c.upstreamUp ? 'up' : 'down'} ${c.request.registry}/${c.request.repository}:${c.request.tag} → ${c.want}`;
    it(name, async () => {
      const probe = fixedProbe(c.upstreamUp);
      const policy = createTagPolicy({ probe }, { mode: c.mode, filters: c.filters });
      // Twice: a global regex must not flip its answer between calls.
      for (let i = 0; i < 2; i++) {
        assert.equal(await policy.allowTagResolution(c.request, AbortSignal.timeout(1_000)), c.want);
      }
      assert.deepEqual(probe.asked, c.probed ? [c.request.registry, c.request.registry] : []);
    });
  }

  it('rejects an unknown mode', () => {
    assert.throws(
      () => createTagPolicy({ probe: fixedProbe(true) }, { mode: 'sometimes' as TagResolutionMode }),
      {
        message: 'unknown tag resolution mode "sometimes", expected one of upstream-down, always, never',
      },
    );
  });
});
