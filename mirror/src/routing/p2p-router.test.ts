import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setImmediate as tick } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { systemClock, type Clock } from '../clock/clock.js';
import { ManualClock } from '../../test-support/manual-clock.js';
import { createMetrics } from '../metrics/metrics.js';
import { createIndexStore } from './index-store.js';
import { createStaticMembers } from './membership.js';
import { createP2PRouter, type P2PRouter, type P2PRouterOptions } from './p2p-router.js';
import { PeerError } from '../peer-transport/peer-error.js';
import type { PeerClient } from './peer-client.js';
import { createPeerService, type PeerService } from './peer-service.js';
import { hashMembers, rankOwners } from './rendezvous.js';
import { startP2PCluster, type P2PTestNode } from '../../test-support/p2p-test-cluster.js';
import {
  collect,
  eventually,
  randomDigest,
  runRouterConformance,
} from '../../test-support/router-conformance.js';

// R = 1: every key has a single owner, so join/leave only pass if keys really move.
runRouterConformance('P2PRouter, 3 nodes, R=1', () => startP2PCluster({ size: 3, router: { replicas: 1 } }));
// The default R = 3 on 4 nodes: owners overlap, lookups race three answers.
runRouterConformance('P2PRouter, 4 nodes, R=3', () => startP2PCluster({ size: 4, firstHost: 30 }));

interface Call {
  readonly operation: 'advertise' | 'withdraw' | 'lookup';
  readonly from: string;
  readonly to: string;
  readonly keys: readonly string[];
  /** The cluster clock's time when sent. */
  readonly at: number;
  readonly sentAt: number;
  answeredAt?: number;
}

// An in-process transport: requests go through a JSON round trip to the target node's
// PeerService after a macrotask, and every call is recorded with a global sequence number.
// `oldPeers`: answers carry no boot id, as from nodes older than boot ids.
function inProcessCluster(
  size: number,
  options: P2PRouterOptions = {},
  oldPeers = false,
  clock: Clock = systemClock,
) {
  const services = new Map<string, PeerService>();
  const calls: Call[] = [];
  const broken = new Set<string>();
  const hung = new Set<string>();
  // Calls to hung members wait here until `release()`, then fail as refused.
  let released!: () => void;
  let hangUntilReleased = new Promise<void>((resolve) => (released = resolve));
  let sequence = 0;
  const ids = Array.from({ length: size }, (_, i) => `10.${Math.floor(i / 250)}.${i % 250}.1:5001`);
  const source = createStaticMembers(ids);
  const routers = new Map<string, P2PRouter>();
  function addNode(id: string): P2PRouter {
    const index = createIndexStore({ now: () => clock.now() });
    services.set(`http://${id}`, createPeerService(index));
    const client: PeerClient = {
      async advertise(url, request) {
        return (await dispatch(id, url, 'advertise', request)) as { accepted: number };
      },
      async withdraw(url, request) {
        return (await dispatch(id, url, 'withdraw', request)) as { removed: number };
      },
      async lookup(url, key) {
        return (await dispatch(id, url, 'lookup', { keys: [key] })) as ReturnType<PeerService['lookup']>;
      },
    };
    const router = createP2PRouter(
      {
        members: source,
        self: { id, registryUrl: `http://${id.replace(':5001', ':5000')}` },
        index,
        client,
        clock,
      },
      options,
    );
    routers.set(id, router);
    return router;
  }
  for (const id of ids) addNode(id);
  async function dispatch(
    from: string,
    url: string,
    operation: Call['operation'],
    body: unknown,
  ): Promise<unknown> {
    const keys = (body as { keys: string[] }).keys;
    const call: Call = { operation, from, to: url.slice(7), keys, at: clock.now(), sentAt: sequence++ };
    calls.push(call);
    await tick();
    if (hung.has(call.to)) await hangUntilReleased;
    if (broken.has(call.to) || hung.has(call.to))
      throw new PeerError('refused', `${operation}: connection refused`);
    const service = services.get(url)!;
    const request = JSON.parse(JSON.stringify(body)) as never;
    const answer = JSON.parse(JSON.stringify(service[operation](request))) as Record<string, unknown>;
    if (oldPeers) delete answer.boot;
    call.answeredAt = sequence++;
    return answer;
  }
  return {
    ids,
    routers,
    calls,
    broken,
    hung,
    /** Ends the hang of every hung member's calls (they fail) and clears the set. */
    release() {
      hung.clear();
      released();
      hangUntilReleased = new Promise<void>((resolve) => (released = resolve));
    },
    node: (i: number) => routers.get(ids[i]!)!,
    /** Replaces member `i`'s index share with an empty one (a restart as its peers see it). */
    restartShare(i: number) {
      const index = createIndexStore();
      services.set(`http://${ids[i]}`, createPeerService(index));
      return index;
    },
    /** Adds a member to the source (and starts its router). */
    async join(id: string): Promise<P2PRouter> {
      ids.push(id);
      source.set(ids);
      const router = addNode(id);
      await router.start();
      return router;
    },
    start: () => Promise.all([...routers.values()].map((r) => r.start())),
    close: () => {
      released();
      return Promise.all([...routers.values()].map((r) => r.close()));
    },
  };
}

/**
 * Moves `clock` forward by `ms` in steps of `step`, letting the work each step's timers start
 * (in-process peer calls, a macrotask each) finish before the next step.
 */
async function advance(clock: ManualClock, ms: number, step: number): Promise<void> {
  for (let passed = 0; passed < ms; passed += step) {
    clock.advance(Math.min(step, ms - passed));
    for (let turn = 0; turn < 10; turn++) await tick();
  }
}

describe('P2PRouter lookups', () => {
  it('takes one round trip among 100 members: at most R requests, all sent before any answer', async () => {
    // No liveness probes: 100 routers probing 8 owners a second would load this busy machine.
    const cluster = inProcessCluster(100, { lookupTimeoutMs: 500, probeIntervalMs: 3_600_000 });
    after(() => cluster.close());
    await cluster.start();
    const owned = new Map<string, string>();
    for (let i = 0; i < 100; i++) {
      const keys = Array.from({ length: 10 }, randomDigest);
      for (const key of keys) owned.set(key, cluster.ids[i]!);
      await cluster.node(i).advertise(keys);
    }
    const advertiseCalls = cluster.calls.filter((c) => c.operation === 'advertise').length;
    assert.ok(advertiseCalls <= 100 * 10 * 3, `${advertiseCalls} advertise requests`);
    const keys = [...owned.keys()];
    for (let n = 0; n < 200; n++) {
      const key = keys[(n * 7919) % keys.length]!;
      const from = (n * 31) % 100;
      const before = cluster.calls.length;
      const found = await collect(cluster.node(from), key, 3, 2000);
      // This lookup's requests (other nodes' liveness probes run meanwhile).
      const lookups = cluster.calls
        .slice(before)
        .filter((c) => c.from === cluster.ids[from] && c.keys[0] === key);
      const expected = owned.get(key) === cluster.ids[from] ? [] : [owned.get(key)];
      assert.deepEqual(
        found.map((h) => h.id),
        expected,
        key,
      );
      assert.ok(lookups.length <= 3, `${lookups.length} requests`);
      assert.ok(lookups.every((c) => c.operation === 'lookup' && c.from === cluster.ids[from]));
      const firstAnswer = Math.min(...lookups.map((c) => c.answeredAt ?? Infinity));
      assert.ok(
        lookups.every((c) => c.sentAt < firstAnswer),
        'every owner is asked before the first answer arrives',
      );
    }
  });

  it('answers from its own index share without a network call when it owns the key', async () => {
    const cluster = inProcessCluster(3);
    after(() => cluster.close());
    await cluster.start();
    const key = randomDigest();
    await cluster.node(0).advertise([key]);
    const before = cluster.calls.length;
    assert.deepEqual(
      (await collect(cluster.node(1), key, 1)).map((h) => h.id),
      [cluster.ids[0]],
    );
    assert.equal(cluster.calls.length, before, 'R = 3 of 3: every node owns every key');
  });

  it('yields holders in cool-down last', async () => {
    const clock = new ManualClock();
    const cluster = inProcessCluster(3, {}, false, clock);
    after(() => cluster.close());
    await cluster.start();
    const key = 'docker.io/library/app:v1';
    await cluster.node(0).advertise([key]);
    await advance(clock, 1100, 100); // a later expiry sorts node 1 first otherwise
    await cluster.node(1).advertise([key]);
    cluster.node(2).membership.reportFailure(cluster.ids[1]!);
    assert.deepEqual(
      (await collect(cluster.node(2), key)).map((h) => h.id),
      [cluster.ids[0], cluster.ids[1]],
    );
  });

  it('ends within the lookup budget when an owner hangs, and still finds keys another owner knows', async () => {
    const clock = new ManualClock();
    const cluster = inProcessCluster(4, { replicas: 3, lookupTimeoutMs: 20 }, false, clock);
    after(() => cluster.close());
    await cluster.start();
    const key = randomDigest();
    const holder = cluster.ids.findIndex((_, i) => i > 0);
    await cluster.node(holder).advertise([key]);
    const asker = cluster.ids.findIndex((_, i) => i !== holder);
    // Hang every other member: the lookup must end at its 20 ms budget, not wait for them.
    for (const id of cluster.ids) if (id !== cluster.ids[asker]) cluster.hung.add(id);
    let ended = false;
    const unknown = collect(cluster.node(asker), randomDigest()).finally(() => (ended = true));
    await advance(clock, 19, 19);
    assert.equal(ended, false, 'it waits for the owners within its budget');
    await advance(clock, 1, 1);
    assert.deepEqual(await unknown, []);
    cluster.release();
    // Owners that answer end the lookup without waiting for the clock at all.
    const found = await collect(cluster.node(asker), key);
    assert.deepEqual(
      found.map((h) => h.id),
      asker === holder ? [] : [cluster.ids[holder]],
    );
  });

  it('counts members, keys, lookups and peer errors in the metrics', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, { defaultMetrics: false });
    const ids = ['127.0.5.60:5001', '127.0.5.61:5001', '127.0.5.62:5001'];
    const failing: PeerClient = {
      advertise: () => Promise.reject(new PeerError('refused', 'refused')),
      withdraw: () => Promise.reject(new PeerError('refused', 'refused')),
      lookup: () => Promise.reject(new PeerError('timeout', 'timeout')),
    };
    const router = createP2PRouter(
      {
        members: createStaticMembers(ids),
        self: { id: ids[0]!, registryUrl: 'http://127.0.5.60:5000' },
        metrics,
        client: failing,
      },
      { replicas: 1 },
    );
    after(() => router.close());
    await router.start();
    assert.equal(router.ready(), true);
    // Deterministic keys; the expected counts follow from their owners.
    const members = hashMembers(ids);
    const digest = (i: number): string => `sha256:${createHash('sha256').update(`m${i}`).digest('hex')}`;
    const owners = (key: string): string[] => rankOwners(key, members, 1).map((m) => m.id);
    const keys = [digest(0), digest(1), 'docker.io/library/app:v1'];
    const remoteOwners = new Set(keys.flatMap(owners).filter((id) => id !== ids[0]));
    const selfOwnedDigests = keys.slice(0, 2).filter((k) => owners(k).includes(ids[0]!)).length;
    const selfOwnedTags = owners(keys[2]!).includes(ids[0]!) ? 1 : 0;
    await router.advertise([...keys, 'not a key']);
    for (const id of ids) router.membership.reportSuccess(id);
    // A key neither owned by this node nor next in rank (the spare asked when the owner fails).
    let probe = 2;
    while (rankOwners(digest(probe), members, 2).some((m) => m.id === ids[0])) probe++;
    assert.deepEqual(await collect(router, digest(probe)), []);
    const text = await registry.metrics();
    const expected = [
      'peili_members 3',
      'peili_advertised_keys{kind="digest"} 2',
      'peili_advertised_keys{kind="tag"} 1',
      `peili_indexed_keys{kind="digest"} ${selfOwnedDigests}`,
      `peili_indexed_keys{kind="tag"} ${selfOwnedTags}`,
      `peili_peer_errors_total{operation="advertise",reason="refused"} ${remoteOwners.size}`,
      'peili_peer_errors_total{operation="lookup",reason="timeout"} 2',
      'peili_lookups_total{result="error"} 1',
      'peili_lookup_duration_seconds_count{result="error"} 1',
    ];
    for (const line of expected) assert.ok(text.includes(line + '\n'), `${line}\n${text}`);
    assert.equal(router.advertisedCount(), 3);
  });
});

describe('P2PRouter advertising', () => {
  it('re-sends at once only the keys whose owners changed, and only to the new owner', async () => {
    const cluster = inProcessCluster(10);
    after(() => cluster.close());
    await cluster.start();
    const sender = cluster.node(0);
    const keys = Array.from(
      { length: 1000 },
      (_, i) => `sha256:${createHash('sha256').update(`r${i}`).digest('hex')}`,
    );
    await sender.advertise(keys);
    const newcomer = '10.0.99.1:5001';
    const before = hashMembers(cluster.ids);
    const afterJoin = hashMembers([...cluster.ids, newcomer]);
    const owners = (key: string, members: typeof before): string =>
      rankOwners(key, members, 3)
        .map((m) => m.id)
        .join(' ');
    const moved = keys.filter((key) => owners(key, before) !== owners(key, afterJoin)).sort();
    const sent = cluster.calls.length;
    await cluster.join(newcomer);
    await sender.sync();
    const resent = cluster.calls
      .slice(sent)
      .filter((c) => c.from === cluster.ids[0] && c.operation === 'advertise');
    assert.deepEqual([...new Set(resent.map((c) => c.to))], [newcomer]);
    assert.deepEqual(resent.flatMap((c) => c.keys).sort(), moved);
    assert.ok(moved.length > 200 && moved.length < 350, `${moved.length} of 1000 keys moved (ideal 3/11)`);
  });

  it('spreads refreshes over the refresh window instead of sending them in one burst', async () => {
    const clock = new ManualClock();
    const cluster = inProcessCluster(2, { ttlSeconds: 4, refreshIntervalMs: 2000, tickMs: 50 }, false, clock);
    after(() => cluster.close());
    await cluster.start();
    const keys = Array.from(
      { length: 1000 },
      (_, i) => `sha256:${createHash('sha256').update(`s${i}`).digest('hex')}`,
    );
    const started = clock.now();
    await cluster.node(0).advertise(keys);
    const initial = cluster.calls.length;
    await advance(clock, 2700, 50);
    const refreshes = cluster.calls
      .slice(initial)
      .filter((c) => c.from === cluster.ids[0] && c.operation === 'advertise');
    const refreshed = refreshes.flatMap((c) => c.keys);
    assert.equal(new Set(refreshed).size, 1000, 'every key refreshed');
    assert.equal(refreshed.length, 1000, 'each key once within 1.25 × the interval');
    const times = refreshes.map((c) => c.at - started);
    assert.ok(Math.min(...times) >= 1450, `first refresh after ${Math.min(...times).toFixed(0)} ms`);
    assert.ok(refreshes.length >= 8, `${refreshes.length} refresh requests`);
    const largest = Math.max(...refreshes.map((c) => c.keys.length));
    assert.ok(largest < 400, `largest refresh batch ${largest} keys`);
  });
});

describe('P2PRouter under churn', () => {
  it('keeps finding existing content while a member is killed and restarted', async () => {
    const cluster = await startP2PCluster({
      size: 5,
      firstHost: 50,
      // Correctness under churn, not latency: a loaded test machine can take >250 ms for a first request.
      router: { replicas: 3, lookupTimeoutMs: 1500 },
    });
    after(() => cluster.close());
    const [a, b, ...askers] = cluster.nodes;
    const keys = Array.from({ length: 30 }, randomDigest);
    await a!.router.advertise(keys);
    await b!.router.advertise(keys.slice(0, 15));
    let lookups = 0;
    const failures: string[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        for (const key of keys) {
          const asker = askers[lookups % askers.length]!;
          lookups++;
          const found = await collect(asker.router, key, 3, 2000);
          if (!found.some((h) => h.id === a!.location.id)) failures.push(`${asker.location.id} ${key}`);
        }
      }
    })();
    const victim = askers.pop()!;
    // Phases by lookup count, not by time: the test machine's speed varies a lot.
    const afterMore = async (n: number): Promise<void> => {
      const target = lookups + n;
      assert.equal(await eventually(async () => lookups >= target, 20_000), true, `${n} more lookups`);
    };
    await afterMore(20);
    await cluster.crash(victim);
    await afterMore(30);
    const restarted = await cluster.restart(victim);
    askers.push(restarted);
    await afterMore(30);
    running = false;
    await load;
    assert.deepEqual(failures, []);
    const settled = await eventually(async () => {
      for (const key of keys) {
        if (!(await collect(restarted.router, key)).some((h) => h.id === a!.location.id)) return false;
      }
      return true;
    }, 3000);
    assert.equal(settled, true, 'the restarted member finds every key');
  });
});

describe('createP2PRouter options', () => {
  it('rejects a refresh interval that would let keys expire between refreshes', () => {
    assert.throws(
      () =>
        createP2PRouter(
          {
            members: createStaticMembers([]),
            self: { id: '127.0.5.70:5001', registryUrl: 'http://127.0.5.70:5000' },
          },
          { ttlSeconds: 10, refreshIntervalMs: 8000 },
        ),
      { message: 'refreshIntervalMs (8000) × 1.25 must be shorter than ttlSeconds (10 s)' },
    );
  });
});

describe('P2PRouter start', () => {
  it('opens a connection to every other member with one lookup, uncounted, before it resolves', async () => {
    const cluster = inProcessCluster(4);
    after(() => cluster.close());
    await cluster.node(0).start();
    const lookups = cluster.calls.filter((c) => c.operation === 'lookup' && c.from === cluster.ids[0]);
    assert.deepEqual(lookups.map((c) => c.to).sort(), cluster.ids.slice(1).sort());
    assert.ok(
      lookups.every((c) => c.answeredAt !== undefined),
      'answered before start resolved',
    );
  });

  it('warms up a connection to a member that joins later, on the next tick', async () => {
    const cluster = inProcessCluster(3, { tickMs: 20, membership: { refreshIntervalMs: 20 } });
    after(() => cluster.close());
    await cluster.start();
    const newcomer = '10.0.77.1:5001';
    await cluster.join(newcomer);
    const warmed = await eventually(
      async () =>
        cluster.calls.some((c) => c.from === cluster.ids[0] && c.to === newcomer && c.operation === 'lookup'),
      2000,
      10,
    );
    assert.equal(warmed, true);
  });

  it('starts even when members do not answer the warm-up, without cooling them down', async () => {
    const cluster = inProcessCluster(3);
    after(() => cluster.close());
    cluster.broken.add(cluster.ids[1]!);
    await cluster.node(0).start();
    assert.equal(cluster.node(0).membership.coolingDown(cluster.ids[1]!), false);
  });
});

// Keys (random digests) whose R owners among `everyone` are all in `among`.
function keysOwnedOnlyBy(among: ReadonlySet<string>, everyone: readonly string[], n: number): string[] {
  const members = hashMembers(everyone);
  const keys: string[] = [];
  while (keys.length < n) {
    const key = randomDigest();
    if (rankOwners(key, members, 3).every((o) => among.has(o.id))) keys.push(key);
  }
  return keys;
}

describe('P2PRouter when owners crash or restart', () => {
  // Long TTL and refresh as in production: only restart detection and probes can move keys.
  const slow: P2PRouterOptions = {
    replicas: 3,
    ttlSeconds: 300,
    refreshIntervalMs: 120_000,
    tickMs: 100,
    lookupTimeoutMs: 1500,
  };

  it('refills owners that restarted with empty shares within a tick, not at the 120 s refresh', async () => {
    // No probes: only the restarted owners naming their new boot id can tell the holder.
    const cluster = await startP2PCluster({
      size: 5,
      firstHost: 70,
      router: { ...slow, probeIntervalMs: 3_600_000 },
    });
    after(() => cluster.close());
    const [holder, asker, ...victims] = cluster.nodes;
    const ids = cluster.nodes.map((n) => n.location.id);
    const keys = keysOwnedOnlyBy(new Set(victims.map((v) => v.location.id)), ids, 5);
    await holder!.router.advertise(keys);
    for (const key of keys) assert.equal((await collect(asker!.router, key, 1, 2000)).length, 1);
    // All three owners crash and restart before anyone calls them: they come back empty.
    for (const victim of victims) await cluster.kill(victim);
    const restarted: P2PTestNode[] = [];
    for (const victim of victims) restarted.push(await cluster.restart(victim));
    const started = performance.now();
    const refilled = await eventually(
      async () => restarted.every((r) => keys.every((key) => r.router.index.get(key).length === 1)),
      3000,
      5,
    );
    const ms = performance.now() - started;
    assert.equal(refilled, true, 'every restarted owner holds its keys again');
    for (const key of keys) {
      const found = await collect(asker!.router, key, 1, 2000);
      assert.deepEqual(
        found.map((h) => h.id),
        [holder!.location.id],
      );
    }
    assert.ok(ms < 3000, `refilled after ${ms} ms`);
  });

  it('moves the keys of crashed owners to the next-ranked members, where lookups find them', async () => {
    const cluster = await startP2PCluster({
      size: 6,
      firstHost: 90,
      router: { ...slow, probeIntervalMs: 200 },
    });
    after(() => cluster.close());
    const [holder, asker, ...rest] = cluster.nodes;
    const victims = rest.slice(0, 3);
    const ids = cluster.nodes.map((n) => n.location.id);
    const keys = keysOwnedOnlyBy(new Set(victims.map((v) => v.location.id)), ids, 5);
    await holder!.router.advertise(keys);
    for (const victim of victims) await cluster.kill(victim);
    // The asker skips the dead owners and asks the next ones by rank; the holder must have
    // noticed the outage (its probes) and placed the keys there.
    const found = await eventually(async () => {
      for (const key of keys) {
        const holders = await collect(asker!.router, key, 1, 2000);
        if (holders[0]?.id !== holder!.location.id) return false;
      }
      return true;
    }, 5000);
    assert.equal(found, true, 'keys whose three owners are down are found during the outage');
  });

  it('re-sends the keys of an owner whose probe answer names a new boot id', async () => {
    const cluster = inProcessCluster(6, { ...slow, tickMs: 20, probeIntervalMs: 20 });
    after(() => cluster.close());
    await cluster.start();
    const keys = Array.from({ length: 60 }, randomDigest);
    await cluster.node(0).advertise(keys);
    const members = hashMembers(cluster.ids);
    const owned = keys.filter((key) => rankOwners(key, members, 3).some((o) => o.id === cluster.ids[3]));
    assert.ok(owned.length > 0);
    const fresh = cluster.restartShare(3);
    const refilled = await eventually(
      async () => owned.every((key) => fresh.get(key).length === 1),
      3000,
      10,
    );
    assert.equal(refilled, true);
    // Only that owner's keys were re-sent, not the others'.
    assert.deepEqual(fresh.keys().sort(), owned.sort());
  });

  it('probes at most maxProbesPerTick owners a tick, longest silent first, and reaches every owner', async () => {
    const clock = new ManualClock();
    const cluster = inProcessCluster(
      30,
      { ...slow, tickMs: 20, probeIntervalMs: 20, maxProbesPerTick: 4 },
      false,
      clock,
    );
    after(() => cluster.close());
    await cluster.node(0).start();
    await cluster.node(0).advertise(Array.from({ length: 300 }, randomDigest));
    const probes = () =>
      cluster.calls.filter(
        (c) =>
          c.from === cluster.ids[0] && c.operation === 'lookup' && c.keys[0] === `sha256:${'0'.repeat(64)}`,
      );
    const before = probes().length;
    await advance(clock, 400, 20);
    const sent = probes().slice(before);
    const ticks = 400 / 20;
    assert.ok(sent.length <= 4 * ticks, `${sent.length} probes in at most ${ticks} ticks`);
    assert.equal(new Set(sent.map((c) => c.to)).size, 29, 'every other owner was probed');
  });

  // Owner ranks of a key from the asker's view, with the holder placed at the first spare only.
  function spareSetup(asker: number) {
    const cluster = inProcessCluster(8, { ...slow, probeIntervalMs: 3_600_000 });
    // A key the asker neither owns nor would ask as the first spare.
    let key: string;
    let ranked: string[];
    do {
      key = randomDigest();
      ranked = rankOwners(key, hashMembers(cluster.ids), 8).map((m) => m.id);
    } while (ranked.slice(0, 4).includes(cluster.ids[asker]!));
    const holder = { id: '10.9.9.9:5001', registryUrl: 'http://10.9.9.9:5000' };
    cluster.routers.get(ranked[3]!)!.index.add(holder, [key], 300);
    return { cluster, key, ranked, holder };
  }

  it('asks the next-ranked member in place of an owner whose call fails', async () => {
    const { cluster, key, ranked, holder } = spareSetup(0);
    after(() => cluster.close());
    await cluster.start();
    cluster.broken.add(ranked[0]!);
    const before = cluster.calls.length;
    assert.deepEqual(
      (await collect(cluster.node(0), key, 1, 2000)).map((h) => h.id),
      [holder.id],
    );
    const asked = cluster.calls.slice(before).filter((c) => c.from === cluster.ids[0] && c.keys[0] === key);
    assert.deepEqual(asked.map((c) => c.to).sort(), ranked.slice(0, 4).sort());
  });

  it('asks the next-ranked member when an owner seen restarting moments ago answers nobody', async () => {
    const { cluster, key, ranked, holder } = spareSetup(0);
    after(() => cluster.close());
    await cluster.start();
    const asker = cluster.node(0);
    assert.deepEqual(await collect(asker, key, 1, 2000), [], 'no owner knows the key');
    asker.peerSeen({ id: ranked[1]!, boot: 'first' });
    asker.peerSeen({ id: ranked[1]!, boot: 'second' });
    assert.deepEqual(
      (await collect(asker, key, 1, 2000)).map((h) => h.id),
      [holder.id],
    );
  });

  for (const [reason, probes] of [
    ['timeout', 2],
    ['refused', 1],
  ] as const) {
    it(`cools an owner down after ${probes} failed probe(s) when they fail with ${reason}`, async () => {
      const ids = ['10.9.0.1:5001', '10.9.0.2:5001'];
      let probed = 0;
      const client: PeerClient = {
        advertise: async (_url, request) => ({ accepted: request.keys.length }),
        withdraw: async () => ({ removed: 0 }),
        lookup: async () => {
          probed++;
          throw new PeerError(reason, reason);
        },
      };
      const router = createP2PRouter(
        {
          members: createStaticMembers(ids),
          self: { id: ids[0]!, registryUrl: 'http://10.9.0.1:5000' },
          client,
        },
        { ...slow, replicas: 2, tickMs: 20, probeIntervalMs: 20 },
      );
      after(() => router.close());
      await router.start();
      probed = 0; // the start-up warm-up is no probe
      await router.advertise([randomDigest()]);
      assert.equal(await eventually(async () => router.membership.coolingDown(ids[1]!), 2000, 2), true);
      assert.equal(probed, probes);
    });
  }

  it('works with peers older than boot ids (rolling upgrade)', async () => {
    const clock = new ManualClock();
    const cluster = inProcessCluster(5, { ...slow, tickMs: 20, probeIntervalMs: 20 }, true, clock);
    after(() => cluster.close());
    await cluster.start();
    const keys = Array.from({ length: 20 }, randomDigest);
    await cluster.node(0).advertise(keys);
    const advertised = cluster.calls.length;
    await advance(clock, 100, 20); // some ticks of probes
    // An answer without a boot id is no restart: nothing is re-sent before the refresh.
    const resent = cluster.calls.slice(advertised).filter((c) => c.operation === 'advertise');
    assert.deepEqual(resent, []);
    for (const key of keys) {
      assert.deepEqual(
        (await collect(cluster.node(1), key, 1)).map((h) => h.id),
        [cluster.ids[0]],
      );
    }
    for (const id of cluster.ids.slice(1)) assert.equal(cluster.node(0).membership.coolingDown(id), false);
  });
});
