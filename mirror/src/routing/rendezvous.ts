// Rendezvous (highest-random-weight) hashing: every node computes the same owners for a key
// from the same member set, with no coordination, and a member joining or leaving moves only
// the keys it wins or held (about R/N of them). Pure and allocation-light: a lookup ranks a few
// hundred members at most, and a membership change re-ranks every advertised key once.

/** A member prepared for ranking: its id and the hash of that id, computed once. */
export interface HashedMember {
  readonly id: string;
  readonly hash: number;
}

// 32-bit FNV-1a over the string's code units (keys and member ids are ASCII), then mixed.
function hashString(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

// MurmurHash3's finaliser: every input bit affects every output bit.
function fmix32(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 32-bit hash of a routing key, as used by `rankOwners`. */
export function keyHash(key: string): number {
  return hashString(key);
}

/** Prepares member ids for ranking (hashes each id once). */
export function hashMembers(ids: Iterable<string>): HashedMember[] {
  return [...ids].map((id) => ({ id, hash: hashString(id) }));
}

/** The weight of `member` for a key whose hash is `kh`: the highest weights own the key. */
export function score(kh: number, member: HashedMember): number {
  return fmix32(Math.imul(kh ^ member.hash, 0x9e3779b1) ^ member.hash);
}

/**
 * The `count` members with the highest weight for `key`, best first. Deterministic for a given
 * member set whatever its order (ties, which need a 32-bit collision, are broken by id).
 */
export function rankOwners(key: string, members: readonly HashedMember[], count: number): HashedMember[] {
  const kh = keyHash(key);
  const best: HashedMember[] = [];
  const scores: number[] = [];
  for (const member of members) {
    const s = score(kh, member);
    if (best.length === count) {
      const last = best.length - 1;
      if (s < scores[last]! || (s === scores[last] && member.id > best[last]!.id)) continue;
    }
    // Insertion into a tiny sorted array: count is R (3 by default).
    let i = best.length;
    while (i > 0 && (scores[i - 1]! < s || (scores[i - 1] === s && best[i - 1]!.id > member.id))) i--;
    best.splice(i, 0, member);
    scores.splice(i, 0, s);
    if (best.length > count) {
      best.pop();
      scores.pop();
    }
  }
  return best;
}
