import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { createIndexStore, decodeKey, encodeKey } from './index-store.js';

const A = { id: '10.0.0.1:5001', registryUrl: 'http://10.0.0.1:5000' };
const B = { id: '10.0.0.2:5001', registryUrl: 'http://10.0.0.2:5000' };
const C = { id: '10.0.0.3:5001', registryUrl: 'http://10.0.0.3:5000' };
const D1 = 'sha256:' + '1'.repeat(64);
const D2 = 'sha256:' + '2'.repeat(64);
const TAG = 'docker.io/library/nginx:1.27';
const T0 = 1_700_000_000_000;

function clock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let at = start;
  return { now: () => at, advance: (ms) => (at += ms) };
}

describe('index store', () => {
  it('encodes sha256 keys in 33 one-byte characters and decodes them back', () => {
    const cases: [string, number][] = [
      [D1, 33],
      ['sha512:' + 'a'.repeat(128), 135],
      [TAG, TAG.length],
    ];
    for (const [key, length] of cases) {
      assert.equal(encodeKey(key).length, length, key);
      assert.equal(decodeKey(encodeKey(key)), key);
    }
  });

  it('returns holders with their expiry, latest first, and refreshes in place', () => {
    const t = clock();
    const index = createIndexStore({ now: t.now });
    index.add(A, [D1, TAG], 60);
    t.advance(10_000);
    index.add(B, [D1], 60);
    assert.deepEqual(index.get(D1), [
      { ...B, expiresAt: T0 + 70_000 },
      { ...A, expiresAt: T0 + 60_000 },
    ]);
    index.add(A, [D1], 120);
    assert.deepEqual(index.get(D1), [
      { ...A, expiresAt: T0 + 130_000 },
      { ...B, expiresAt: T0 + 70_000 },
    ]);
    assert.deepEqual(index.get(TAG), [{ ...A, expiresAt: T0 + 60_000 }]);
    assert.deepEqual(index.get(D2), []);
    assert.deepEqual(index.counts(), { digest: 1, tag: 1 });
  });

  it('keeps an entry for at least its TTL, rounding the expiry up to a whole second', () => {
    const t = clock(T0 + 400);
    const index = createIndexStore({ now: t.now });
    index.add(A, [D1], 1);
    t.advance(1599); // expiry = ceil(T0 + 0.4 s + 1 s) = T0 + 2 s
    assert.equal(index.get(D1).length, 1);
    t.advance(1);
    assert.deepEqual(index.get(D1), []);
    assert.deepEqual(index.counts(), { digest: 1, tag: 0 }, 'counted until swept');
    assert.equal(index.sweep(), 1);
    assert.deepEqual(index.counts(), { digest: 0, tag: 0 });
    assert.deepEqual(index.keys(), []);
  });

  it('sweeps only expired holders of a key', () => {
    const t = clock();
    const index = createIndexStore({ now: t.now });
    index.add(A, [D1, D2], 10);
    index.add(B, [D1], 30);
    t.advance(20_000);
    assert.equal(index.sweep(), 1);
    assert.deepEqual(index.keys(), [D1]);
    assert.deepEqual(index.get(D1), [{ ...B, expiresAt: T0 + 30_000 }]);
  });

  it('removes a holder by id and reports how many entries went', () => {
    const index = createIndexStore();
    index.add(A, [D1, D2, TAG], 60);
    index.add(B, [D1], 60);
    assert.equal(index.remove(A.id, [D1, D2, 'sha256:' + '9'.repeat(64)]), 2);
    assert.deepEqual(
      index.get(D1).map((h) => h.id),
      [B.id],
    );
    assert.deepEqual(index.get(D2), []);
    assert.deepEqual(index.counts(), { digest: 1, tag: 1 });
  });

  it('replaces the holder expiring first when a key has too many', () => {
    const t = clock();
    const index = createIndexStore({ now: t.now, maxHoldersPerKey: 2 });
    index.add(A, [D1], 30);
    index.add(B, [D1], 10);
    index.add(C, [D1], 20);
    assert.deepEqual(
      index.get(D1).map((h) => h.id),
      [A.id, C.id],
    );
  });

  it('treats a holder re-registered under a new registry URL as a separate interned holder', () => {
    const index = createIndexStore();
    index.add(A, [D1], 60);
    index.add({ id: A.id, registryUrl: 'http://10.0.0.9:5000' }, [D1], 60);
    assert.equal(index.get(D1).length, 2);
    assert.equal(index.remove(A.id, [D1]), 2);
  });

  it('holds 10 000 single-holder digest keys in under 150 bytes each', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const keys = Array.from(
      { length: 10_000 },
      (_, i) => `sha256:${createHash('sha256').update(`k${i}`).digest('hex')}`,
    );
    gc();
    const before = process.memoryUsage().heapUsed;
    const index = createIndexStore();
    for (let i = 0; i < keys.length; i += 1000) index.add(i % 2000 ? A : B, keys.slice(i, i + 1000), 300);
    gc();
    const perKey = (process.memoryUsage().heapUsed - before) / keys.length;
    assert.ok(perKey < 150, `${perKey.toFixed(1)} bytes per key`);
    assert.deepEqual(index.counts(), { digest: 10_000, tag: 0 });
  });
});
