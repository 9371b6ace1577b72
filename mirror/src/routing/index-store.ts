// The share of the cluster index this node owns: key → holders with an expiry.
// Memory matters (a node may own tens of thousands of keys under a 128 MiB limit), so:
// - sha256 digest keys are stored as 33-character one-byte strings (a NUL marker plus the 32 raw
//   bytes) instead of 71 characters of hex;
// - holders are interned: an entry refers to a holder by a small integer index;
// - an entry with one holder (the common case) is a single number `index * 2^32 + expirySeconds`,
//   more holders a flat array `[index, expiry, index, expiry, …]`.
import { randomBytes } from 'node:crypto';
import type { PeerLocation } from './router.js';
import type { KeyKind } from './keys.js';

/** A holder of a key as the index returns it. */
export interface IndexedHolder extends PeerLocation {
  /** When the advertisement expires, in milliseconds since the epoch. */
  readonly expiresAt: number;
}

/** Options of `createIndexStore`. */
export interface IndexStoreOptions {
  /** Most holders kept per key; the entry expiring first is replaced. @default 32 */
  readonly maxHoldersPerKey?: number;
  /** The clock, in milliseconds since the epoch (tests inject one). @default Date.now */
  readonly now?: () => number;
}

/** The keys this node owns in the cluster index, with who holds them until when. */
export interface IndexStore {
  /**
   * Random id of this index share, new with every store (so with every process start). Peers
   * learn it from the protocol's answers: a changed id means the share was lost and must be refilled.
   */
  readonly bootId: string;
  /** Records that `holder` holds `keys` for `ttlSeconds` (refreshing existing entries). */
  add(holder: PeerLocation, keys: readonly string[], ttlSeconds: number): void;
  /** Forgets `keys` for the holder with id `holderId`; returns how many entries were removed. */
  remove(holderId: string, keys: readonly string[]): number;
  /** Unexpired holders of `key`, latest expiry first. */
  get(key: string): IndexedHolder[];
  /** Drops expired entries (and holders no entry refers to); returns how many keys vanished. */
  sweep(): number;
  /** Keys currently indexed, by kind (expired entries count until the next sweep). */
  counts(): Record<KeyKind, number>;
  /** Every indexed key, decoded (for tests and debugging). */
  keys(): string[];
}

const SPLIT = 2 ** 32;
const DIGEST_MARK = '\u0000';
const SHA256_KEY = /^sha256:[0-9a-f]{64}$/;

/** The compact form of a key inside the index (exported for the memory measurement). */
export function encodeKey(key: string): string {
  if (SHA256_KEY.test(key)) return DIGEST_MARK + Buffer.from(key.slice(7), 'hex').toString('latin1');
  return key;
}

/** The key a compact form stands for. */
export function decodeKey(encoded: string): string {
  if (encoded.startsWith(DIGEST_MARK))
    return `sha256:${Buffer.from(encoded.slice(1), 'latin1').toString('hex')}`;
  return encoded;
}

function kindOfEncoded(encoded: string): KeyKind {
  return encoded.startsWith(DIGEST_MARK) || encoded.startsWith('sha512:') ? 'digest' : 'tag';
}

/** Creates an empty index store. */
export function createIndexStore(options: IndexStoreOptions = {}): IndexStore {
  const maxHolders = options.maxHoldersPerKey ?? 32;
  const now = options.now ?? Date.now;
  const entries = new Map<string, number | number[]>();
  const holders: (PeerLocation | undefined)[] = [];
  const holderRefs: number[] = [];
  const holderIndex = new Map<string, number>();
  const freeHolders: number[] = [];
  const counts: Record<KeyKind, number> = { digest: 0, tag: 0 };

  // Expiries are whole seconds, rounded up so an entry lives at least its TTL.
  const nowSeconds = (): number => now() / 1000;

  function intern(holder: PeerLocation): number {
    const id = `${holder.id}\n${holder.registryUrl}`;
    let index = holderIndex.get(id);
    if (index === undefined) {
      index = freeHolders.pop() ?? holders.length;
      holders[index] = { id: holder.id, registryUrl: holder.registryUrl };
      holderRefs[index] = 0;
      holderIndex.set(id, index);
    }
    return index;
  }

  function release(index: number): void {
    holderRefs[index]! -= 1;
    if (holderRefs[index] === 0) {
      const holder = holders[index]!;
      holderIndex.delete(`${holder.id}\n${holder.registryUrl}`);
      holders[index] = undefined;
      freeHolders.push(index);
    }
  }

  // Entries are normalised to the flat-pair form for editing, then packed back.
  function unpack(value: number | number[] | undefined): number[] {
    if (value === undefined) return [];
    if (typeof value === 'number') return [Math.floor(value / SPLIT), value % SPLIT];
    return value;
  }

  function store(encoded: string, pairs: number[], existed: boolean): void {
    if (pairs.length === 0) {
      if (existed) {
        entries.delete(encoded);
        counts[kindOfEncoded(encoded)] -= 1;
      }
      return;
    }
    if (!existed) counts[kindOfEncoded(encoded)] += 1;
    // slice(): an exact-size copy, as arrays grown by push keep spare capacity.
    entries.set(encoded, pairs.length === 2 ? pairs[0]! * SPLIT + pairs[1]! : pairs.slice());
  }

  function withoutExpired(pairs: number[], cutoff: number): number[] {
    let kept: number[] | undefined;
    for (let i = 0; i < pairs.length; i += 2) {
      if (pairs[i + 1]! <= cutoff) {
        kept ??= pairs.slice(0, i);
        release(pairs[i]!);
      } else if (kept) {
        kept.push(pairs[i]!, pairs[i + 1]!);
      }
    }
    return kept ?? pairs;
  }

  return {
    bootId: randomBytes(12).toString('base64url'),

    add(holder, keys, ttlSeconds) {
      const index = intern(holder);
      const expiry = Math.ceil(nowSeconds() + Math.max(1, ttlSeconds));
      for (const key of keys) {
        const encoded = encodeKey(key);
        const value = entries.get(encoded);
        const pairs = value === undefined ? [] : [...unpack(value)];
        let found = false;
        for (let i = 0; i < pairs.length; i += 2) {
          if (pairs[i] === index) {
            pairs[i + 1] = expiry;
            found = true;
            break;
          }
        }
        if (!found) {
          if (pairs.length / 2 >= maxHolders) {
            let soonest = 0;
            for (let i = 2; i < pairs.length; i += 2) if (pairs[i + 1]! < pairs[soonest + 1]!) soonest = i;
            release(pairs[soonest]!);
            pairs.splice(soonest, 2);
          }
          pairs.push(index, expiry);
          holderRefs[index]! += 1;
        }
        store(encoded, pairs, value !== undefined);
      }
      // An empty batch must not leave an unreferenced holder interned.
      if (holderRefs[index] === 0) {
        holderRefs[index] = 1;
        release(index);
      }
    },

    remove(holderId, keys) {
      let removed = 0;
      for (const key of keys) {
        const encoded = encodeKey(key);
        const value = entries.get(encoded);
        if (value === undefined) continue;
        const pairs = unpack(value);
        const kept: number[] = [];
        for (let i = 0; i < pairs.length; i += 2) {
          if (holders[pairs[i]!]?.id === holderId) {
            release(pairs[i]!);
            removed++;
          } else {
            kept.push(pairs[i]!, pairs[i + 1]!);
          }
        }
        store(encoded, kept, true);
      }
      return removed;
    },

    get(key) {
      const value = entries.get(encodeKey(key));
      if (value === undefined) return [];
      const cutoff = nowSeconds();
      const pairs = unpack(value);
      const result: IndexedHolder[] = [];
      for (let i = 0; i < pairs.length; i += 2) {
        if (pairs[i + 1]! <= cutoff) continue;
        const holder = holders[pairs[i]!]!;
        result.push({ id: holder.id, registryUrl: holder.registryUrl, expiresAt: pairs[i + 1]! * 1000 });
      }
      return result.sort((a, b) => b.expiresAt - a.expiresAt);
    },

    sweep() {
      const cutoff = nowSeconds();
      let vanished = 0;
      for (const [encoded, value] of entries) {
        const pairs = unpack(value);
        const kept = withoutExpired(pairs, cutoff);
        if (kept === pairs) continue;
        store(encoded, kept, true);
        if (kept.length === 0) vanished++;
      }
      return vanished;
    },

    counts() {
      return { ...counts };
    },

    keys() {
      return [...entries.keys()].map(decodeKey);
    },
  };
}
