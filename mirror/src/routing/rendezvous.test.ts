import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { hashMembers, keyHash, rankOwners, type HashedMember } from './rendezvous.js';

const MEMBERS = [
  '10.0.0.1:5001',
  '10.0.0.2:5001',
  '10.0.0.3:5001',
  '10.0.0.4:5001',
  '10.0.0.5:5001',
  '[fd00::6]:5001',
];
// Deterministic digests, so the measured fractions are the same on every run.
const digests = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `sha256:${createHash('sha256').update(String(i)).digest('hex')}`);
const ownerSet = (key: string, members: readonly HashedMember[], r: number): string =>
  rankOwners(key, members, r)
    .map((m) => m.id)
    .join(' ');

describe('rendezvous hashing', () => {
  // Pinned: every node of a cluster must compute the same owners, so changing the hash is a
  // protocol change (bump /peili/v1) and must fail here first.
  const pinned: [string, number, string[]][] = [
    ['sha256:' + 'ab'.repeat(32), 4015577610, ['10.0.0.3:5001', '[fd00::6]:5001', '10.0.0.5:5001']],
    ['docker.io/library/nginx:1.27', 21761143, ['10.0.0.5:5001', '10.0.0.1:5001', '10.0.0.4:5001']],
    ['ghcr.io/org/app:v1', 4291986084, ['10.0.0.2:5001', '[fd00::6]:5001', '10.0.0.3:5001']],
  ];
  for (const [key, hash, owners] of pinned) {
    it(`ranks the owners of ${key} stably`, () => {
      assert.equal(keyHash(key), hash);
      assert.deepEqual(
        rankOwners(key, hashMembers(MEMBERS), 3).map((m) => m.id),
        owners,
      );
      assert.deepEqual(
        rankOwners(key, hashMembers([...MEMBERS].reverse()), 3).map((m) => m.id),
        owners,
        'member order must not matter',
      );
    });
  }

  it('returns every member, best first, when R exceeds the member count', () => {
    const members = hashMembers(MEMBERS.slice(0, 2));
    assert.equal(rankOwners('ghcr.io/org/app:v1', members, 3).length, 2);
    assert.deepEqual(rankOwners('ghcr.io/org/app:v1', [], 3), []);
  });

  it('spreads primary ownership evenly (each of 20 members within ±15 % of 1/20)', () => {
    const members = hashMembers(Array.from({ length: 20 }, (_, i) => `10.1.0.${i}:5001`));
    const share = new Map<string, number>();
    const keys = digests(40_000);
    for (const key of keys) {
      const [first] = rankOwners(key, members, 1);
      share.set(first!.id, (share.get(first!.id) ?? 0) + 1);
    }
    for (const member of members) {
      const fraction = (share.get(member.id) ?? 0) / keys.length;
      assert.ok(Math.abs(fraction - 0.05) < 0.05 * 0.15, `${member.id}: ${fraction}`);
    }
  });

  // With N members and R owners, a join should move about R/(N+1) of the owner sets and every
  // moved set must gain the new member; a leave moves exactly the sets that held the leaver.
  const movement: [number, number][] = [
    [5, 3],
    [20, 3],
    [20, 1],
  ];
  for (const [n, r] of movement) {
    it(`moves only the keys it must when one of ${n} members joins or leaves (R=${r})`, () => {
      const ids = Array.from({ length: n }, (_, i) => `10.2.0.${i}:5001`);
      const before = hashMembers(ids);
      const joined = hashMembers([...ids, '10.2.1.0:5001']);
      const left = hashMembers(ids.slice(1));
      const keys = digests(20_000);
      let movedOnJoin = 0;
      let movedOnLeave = 0;
      for (const key of keys) {
        const was = ownerSet(key, before, r);
        const afterJoin = ownerSet(key, joined, r);
        if (afterJoin !== was) {
          movedOnJoin++;
          assert.ok(afterJoin.split(' ').includes('10.2.1.0:5001'), `${key} moved without the new member`);
        }
        const afterLeave = ownerSet(key, left, r);
        if (afterLeave !== was) {
          movedOnLeave++;
          assert.ok(was.split(' ').includes(ids[0]!), `${key} moved though the leaver did not own it`);
        } else {
          assert.ok(!was.split(' ').includes(ids[0]!), `${key} kept the leaver`);
        }
      }
      const joinFraction = movedOnJoin / keys.length;
      const leaveFraction = movedOnLeave / keys.length;
      assert.ok(
        Math.abs(joinFraction - r / (n + 1)) < 0.02,
        `join moved ${joinFraction}, ideal ${r / (n + 1)}`,
      );
      assert.ok(Math.abs(leaveFraction - r / n) < 0.02, `leave moved ${leaveFraction}, ideal ${r / n}`);
    });
  }
});
