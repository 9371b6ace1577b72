// The behaviour every Router must show, run against MemoryRouter and against real P2P routers.
// `setup` builds a fresh cluster per test; the suite drives it only through the Router interface
// and the cluster's join/crash/settle hooks.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import type { PeerLocation, Router } from '../src/routing/router.js';

/** One member of a cluster under test. */
export interface ConformanceNode {
  readonly location: PeerLocation;
  readonly router: Router;
}

/** A running cluster of at least three routers, built by the implementation under test. */
export interface ConformanceCluster {
  readonly nodes: readonly ConformanceNode[];
  /** How long an advertisement outlives a holder that stopped refreshing it, at most, in ms. */
  readonly ttlMs: number;
  /** The lookup budget for the first answer, in ms. */
  readonly lookupBudgetMs: number;
  /** Adds a member and returns it once it is part of the cluster. */
  join(): Promise<ConformanceNode>;
  /** Stops a member without withdrawing its keys (a crash) and removes it from the member set. */
  crash(node: ConformanceNode): Promise<void>;
  /** Lets membership changes propagate and rebalancing finish. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** A random digest key nobody else uses. */
export function randomDigest(): string {
  return `sha256:${randomBytes(32).toString('hex')}`;
}

/** Every holder a lookup yields (bounded by `timeoutMs`). */
export async function collect(
  router: Router,
  key: string,
  count = 10,
  timeoutMs = 1000,
): Promise<PeerLocation[]> {
  const found: PeerLocation[] = [];
  for await (const holder of router.lookup(key, { signal: AbortSignal.timeout(timeoutMs), count }))
    found.push(holder);
  return found;
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  stepMs = 50,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

const ids = (holders: readonly PeerLocation[]): string[] => holders.map((h) => h.id).sort();

/** Registers the Router conformance tests for one implementation. */
export function runRouterConformance(name: string, setup: () => Promise<ConformanceCluster>): void {
  describe(`Router conformance: ${name}`, () => {
    let cluster: ConformanceCluster | undefined;
    afterEach(async () => {
      await cluster?.close();
      cluster = undefined;
    });
    const start = async (): Promise<ConformanceCluster> => (cluster = await setup());

    it('is ready once started', async () => {
      const c = await start();
      for (const node of c.nodes) assert.equal(node.router.ready(), true, node.location.id);
    });

    it('finds an advertised digest and tag from every other member', async () => {
      const c = await start();
      const [holder, ...others] = c.nodes;
      const keys = [randomDigest(), `docker.io/library/app-${randomBytes(4).toString('hex')}:1.0`];
      await holder!.router.advertise(keys);
      for (const node of others) {
        for (const key of keys)
          assert.deepEqual(await collect(node.router, key), [holder!.location], `${node.location.id} ${key}`);
      }
    });

    it('forgets a withdrawn key', async () => {
      const c = await start();
      const [holder, other] = c.nodes;
      const key = randomDigest();
      await holder!.router.advertise([key]);
      assert.deepEqual(ids(await collect(other!.router, key)), [holder!.location.id]);
      await holder!.router.withdraw([key]);
      for (const node of c.nodes) assert.deepEqual(await collect(node.router, key), [], node.location.id);
    });

    it('never yields the looking-up node itself and deduplicates holders', async () => {
      const c = await start();
      const [a, b, d] = c.nodes;
      const key = randomDigest();
      await a!.router.advertise([key]);
      await a!.router.advertise([key]);
      assert.deepEqual(await collect(a!.router, key), []);
      await b!.router.advertise([key]);
      assert.deepEqual(ids(await collect(a!.router, key)), [b!.location.id]);
      assert.deepEqual(ids(await collect(d!.router, key)), ids([a!.location, b!.location]));
      assert.deepEqual((await collect(d!.router, key, 1)).length, 1);
    });

    it('keeps refreshed keys past their TTL and expires those of a crashed holder', async () => {
      const c = await start();
      const [holder, survivor, other] = c.nodes;
      const key = randomDigest();
      await holder!.router.advertise([key]);
      await survivor!.router.advertise([key]);
      await new Promise((resolve) => setTimeout(resolve, c.ttlMs + 200));
      assert.deepEqual(ids(await collect(other!.router, key)), ids([holder!.location, survivor!.location]));
      await c.crash(holder!);
      await c.settle();
      const gone = await eventually(
        async () => ids(await collect(other!.router, key)).join() === survivor!.location.id,
        c.ttlMs * 2 + 1000,
      );
      assert.equal(gone, true, 'the crashed holder should expire');
      assert.deepEqual(await collect(other!.router, key), [survivor!.location]);
    });

    it('lets a member that joins find existing keys after rebalancing', async () => {
      const c = await start();
      const holder = c.nodes[0]!;
      const keys = Array.from({ length: 40 }, randomDigest);
      await holder.router.advertise(keys);
      const joined = await c.join();
      await c.settle();
      for (const node of [...c.nodes.slice(1), joined]) {
        const missing: string[] = [];
        for (const key of keys)
          if (ids(await collect(node.router, key)).join() !== holder.location.id) missing.push(key);
        assert.deepEqual(missing, [], `${node.location.id} misses keys`);
      }
    });

    it('re-sends keys to new owners when a member leaves', async () => {
      const c = await start();
      const [holder, ...rest] = c.nodes;
      const keys = Array.from({ length: 40 }, randomDigest);
      await holder!.router.advertise(keys);
      const leaving = rest[rest.length - 1]!;
      await c.crash(leaving);
      await c.settle();
      for (const node of rest.slice(0, -1)) {
        const missing: string[] = [];
        for (const key of keys)
          if (ids(await collect(node.router, key)).join() !== holder!.location.id) missing.push(key);
        assert.deepEqual(missing, [], `${node.location.id} misses keys`);
      }
    });

    it('ends a lookup of an unknown key within its budget', async () => {
      const c = await start();
      const started = performance.now();
      const found = await collect(c.nodes[0]!.router, randomDigest(), 3, 5000);
      const elapsed = performance.now() - started;
      assert.deepEqual(found, []);
      assert.ok(elapsed < c.lookupBudgetMs + 500, `lookup took ${elapsed.toFixed(1)} ms`);
    });
  });
}
