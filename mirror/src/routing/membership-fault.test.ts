// A member set that flaps: the source (DNS of a headless Service during a rolling update, say)
// lists a member on one refresh and not on the next. Routing keys hash onto the member set, so
// each flip would move key ownership around; the membership keeps a member through a single
// absent refresh, so a flapping source leaves the routed set still.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMembership, type MemberSource } from './membership.js';

const SELF = '127.0.44.1:5001';
const STABLE = ['127.0.44.2:5001', '127.0.44.3:5001'];
const FLAPPING = '127.0.44.4:5001';

/** A source whose every other listing leaves out `FLAPPING` (and sometimes lists nothing but self). */
function flappingSource(): MemberSource & { listings: number } {
  const source = {
    name: 'flapping',
    listings: 0,
    async list() {
      source.listings++;
      const base = [SELF, ...STABLE];
      return source.listings % 2 === 0 ? base : [...base, FLAPPING];
    },
  };
  return source;
}

describe('membership with a flapping source', () => {
  it('keeps the routed member set still over 200 flapping refreshes', async () => {
    const membership = createMembership(flappingSource(), SELF);
    const signal = AbortSignal.timeout(10_000);
    await membership.refresh(signal);
    const want = [SELF, ...STABLE, FLAPPING].sort();
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      await membership.refresh(signal);
      seen.add(
        membership
          .members()
          .map((m) => m.id)
          .join(','),
      );
    }
    console.log(`flapping source: 201 refreshes, ${seen.size} distinct routed member set(s)`);
    assert.deepEqual([...seen], [want.join(',')]);
    assert.equal(membership.ready(), true);
  });

  it('drops a member that stays absent for two refreshes', async () => {
    let listed = [SELF, ...STABLE, FLAPPING];
    const membership = createMembership({ name: 'static', list: async () => listed }, SELF);
    const signal = AbortSignal.timeout(10_000);
    await membership.refresh(signal);
    listed = [SELF, ...STABLE];
    await membership.refresh(signal);
    assert.ok(membership.get(FLAPPING), 'kept after one absent refresh');
    await membership.refresh(signal);
    assert.equal(membership.get(FLAPPING), undefined);
  });
});
