// Scenario 4: time to first peer of a lookup, on the three-node bed (the real daemons) and on
// simulated member sets of 100 and 1000 members speaking the real peer protocol.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { createStaticMembers } from '../../mirror/src/routing/membership.js';
import { createP2PRouter, type P2PRouter } from '../../mirror/src/routing/p2p-router.js';
import { PEILI_PORTS } from '../../e2e/peili-cluster.js';
import { BED_HOSTS } from '../bed.js';
import type { BenchContext, Scenario } from '../context.js';
import { digestKey } from '../keys.js';
import { seedBigBlob } from '../seed.js';
import { startSim, startSimProcesses, timeLookup, type SimCluster } from '../sim.js';
import { fixed, percentile, summarize } from '../stats.js';

/** Budget a lookup is measured against: long enough to see the whole distribution. */
const MEASURE_TIMEOUT_MS = 2000;
/** The daemon's default `--lookup-timeout`. */
const BUDGET_MS = 20;

interface Series {
  readonly label: string;
  readonly hits: number[];
  readonly misses: number[];
  readonly notFound: number;
  readonly pauses: Pauses;
}

/** What delayed this process while lookups ran: event-loop delay and garbage collections. */
interface Pauses {
  /** p99 and max of `monitorEventLoopDelay` (1 ms sampling: an idle loop reads about 1 ms). */
  readonly loopP99: number;
  readonly loopMax: number;
  readonly gcCount: number;
  readonly gcMaxMs: number;
}

function watchPauses(): { stop(): Pauses } {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let gcCount = 0;
  let gcMaxMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcCount++;
      gcMaxMs = Math.max(gcMaxMs, entry.duration);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      loop.disable();
      observer.disconnect();
      return { loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6, gcCount, gcMaxMs };
    },
  };
}

// The floor under any lookup here: one HTTP round trip over loopback between a bare node:http
// server and a keep-alive client, in this process, with no router, fastify or JSON work.
async function loopbackFloor(count: number): Promise<Omit<Series, 'label'>> {
  const server = http.createServer((_request, response) => {
    response.setHeader('content-type', 'application/json');
    response.end('{"holders":{}}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.38.252', resolve));
  const agent = new http.Agent({ keepAlive: true });
  const url = `http://127.0.38.252:${(server.address() as AddressInfo).port}/`;
  const get = (): Promise<void> =>
    new Promise((resolve, reject) => {
      http
        .get(url, { agent }, (response) => {
          response.resume();
          response.on('end', resolve);
        })
        .on('error', reject);
    });
  try {
    for (let i = 0; i < 100; i++) await get();
    const watch = watchPauses();
    const hits: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      await get();
      hits.push(performance.now() - started);
    }
    return { hits, misses: [], notFound: 0, pauses: watch.stop() };
  } finally {
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function measure(
  router: P2PRouter,
  keys: readonly string[],
  count: number,
  missCount: number,
): Promise<Omit<Series, 'label'>> {
  const hits: number[] = [];
  const misses: number[] = [];
  let notFound = 0;
  const watch = watchPauses();
  for (let i = 0; i < count; i++) {
    const { ms, found } = await timeLookup(router, keys[i % keys.length]!, MEASURE_TIMEOUT_MS);
    if (found) hits.push(ms);
    else notFound++;
  }
  for (let i = 0; i < missCount; i++) {
    misses.push((await timeLookup(router, digestKey(`absent-${Math.random()}`), MEASURE_TIMEOUT_MS)).ms);
  }
  return { hits, misses, notFound, pauses: watch.stop() };
}

async function onBed(ctx: BenchContext, count: number): Promise<Series> {
  const bed = await ctx.bed();
  const blob = await seedBigBlob(bed);
  const keys = [blob.digest, blob.image.layout.images[0]!.configDigest];
  // A fourth member that only asks: it ranks owners over the three daemons and itself, as a
  // daemon does, and calls the daemons' peer protocol.
  const daemons = BED_HOSTS.nodes.map((host) => `${host}:${PEILI_PORTS.router}`);
  const self = '127.0.30.9:5001';
  const router = createP2PRouter(
    {
      members: createStaticMembers([...daemons, self]),
      self: { id: self, registryUrl: 'http://127.0.30.9:5000' },
    },
    { lookupTimeoutMs: MEASURE_TIMEOUT_MS },
  );
  await router.start();
  try {
    await measure(router, keys, 50, 0);
    return {
      label: '3-node bed (real daemons)',
      ...(await measure(router, keys, count, Math.round(count / 4))),
    };
  } finally {
    await router.close();
  }
}

async function onSim(ctx: BenchContext, size: number, firstSubnet: number, count: number): Promise<Series> {
  ctx.log(`lookup: starting ${size} simulated members`);
  const sim = await startSim(size, firstSubnet);
  try {
    return await lookupsIn(sim, `${size} simulated members`, count);
  } finally {
    await sim.close();
  }
}

// The same member set, but only the holders and the asker live in this process: the other
// members run in `processes` child processes, so owners answer from their own event loops, as
// owners on other nodes do (they still share this machine's 2 cores).
async function onSimProcesses(
  ctx: BenchContext,
  size: number,
  firstSubnet: number,
  processes: number,
  count: number,
): Promise<Series> {
  ctx.log(`lookup: starting ${size} simulated members in ${processes} child processes`);
  const sim = await startSim(4, firstSubnet);
  const others = await startSimProcesses(size - 4, firstSubnet, 4, processes).catch(
    async (error: unknown) => {
      await sim.close();
      throw error;
    },
  );
  try {
    sim.source.set([...sim.members.map((m) => m.id), ...others.ids]);
    return await lookupsIn(sim, `${size} simulated members, owners in ${processes} other processes`, count);
  } finally {
    await sim.close();
    await others.close();
  }
}

// Three holders advertise 1000 digest keys each over HTTP; a fourth member looks them up.
async function lookupsIn(sim: SimCluster, label: string, count: number): Promise<Series> {
  const options = { lookupTimeoutMs: MEASURE_TIMEOUT_MS, ttlSeconds: 600, refreshIntervalMs: 120_000 };
  const keys: string[] = [];
  for (let h = 0; h < 3; h++) {
    const router = await sim.withRouter(sim.members[h]!, options);
    const own = Array.from({ length: 1000 }, (_, i) => digestKey(`sim-${label}-${h}-${i}`));
    await router.advertise(own);
    keys.push(...own);
  }
  const asker = await sim.withRouter(sim.members[3]!, options);
  // Shuffle so consecutive lookups hit different owners.
  keys.sort(() => Math.random() - 0.5);
  await measure(asker, keys.slice(0, 100), 100, 0);
  return { label, ...(await measure(asker, keys.slice(100), count, Math.round(count / 4))) };
}

/** The lookup scenario. */
export const lookup: Scenario = {
  id: 'lookup',
  title: '4. Lookup',
  usesBed: true,
  async run(ctx) {
    const count = ctx.quick ? 400 : 2000;
    const series: Series[] = [];
    series.push(await onBed(ctx, count));
    series.push(await onSim(ctx, 100, 38, count));
    series.push(await onSimProcesses(ctx, 100, 39, 4, count));
    series.push(await onSim(ctx, 1000, 31, count));
    const floor = { label: 'loopback HTTP round trip, no router (floor)', ...(await loopbackFloor(count)) };
    const rows = [...series, floor].map((s) => {
      const hit = summarize(s.hits);
      const within = s.hits.filter((ms) => ms <= BUDGET_MS).length / (s.hits.length + s.notFound);
      return [
        s.label,
        String(s.hits.length + s.notFound),
        fixed(hit.median, 2),
        fixed(hit.p75, 2),
        `**${fixed(percentile(s.hits, 99), 2)}**`,
        fixed(hit.max, 1),
        `${fixed(within * 100, 1)} %`,
        s.misses.length > 0
          ? `${fixed(summarize(s.misses).median, 2)} / ${fixed(percentile(s.misses, 99), 2)}`
          : '–',
        `${fixed(s.pauses.loopP99, 1)} / ${fixed(s.pauses.loopMax, 1)}`,
        `${s.pauses.gcCount} / ${fixed(s.pauses.gcMaxMs, 1)}`,
      ];
    });
    const at100 = series[1]!;
    const apart = series[2]!;
    const p99 = percentile(at100.hits, 99);
    return {
      method: [
        'Time to first peer: from calling `router.lookup(key, { count: 1 })` to the first holder yielded (`timeLookup` in `bench/sim.ts`), one lookup after another, for keys that exist. Misses: the same for keys nobody holds (time until the lookup ends empty).',
        `3-node bed: an extra P2P router in the runner with the three \`peili registry\` daemons as members asks their peer protocol for the keys of the 200 MiB image (every daemon owns every key at R = 3).`,
        'Simulated sets: 100 and 1000 members in one process, each a real peer server (`buildPeerApp`, fastify) on its own loopback address with its own index share; 3 of them advertise 1000 digest keys each through real P2P routers (rendezvous owners, R = 3); a 4th looks keys up. Members share this process (and its 2 cores) with the asker, as on a busy node.',
        'The row "owners in 4 other processes" is the 100-member set with only the three holders and the asker in this process; the other 96 members run in 4 child processes (`bench/sim-worker.ts`), each with its own event loop, as owners on other nodes have (they still share the machine).',
        'The last row is the floor under every lookup here: one loopback HTTP round trip between a bare `node:http` server and a keep-alive client in this process, measured in the same run. The last two columns say what else delayed this process during each row: the event-loop delay (`monitorEventLoopDelay`, sampled every 1 ms, so an idle loop reads about 1 ms) and the garbage collections (count and longest pause).',
        `Lookups are given ${MEASURE_TIMEOUT_MS} ms so the whole distribution is seen; the column "within 20 ms" is the share that would have met the daemon's default \`--lookup-timeout\`. ${count} lookups per row after a warm-up.`,
      ],
      tables: [
        {
          columns: [
            'member set',
            'lookups',
            'p50 ms',
            'p75 ms',
            'p99 ms',
            'max ms',
            'within 20 ms',
            'miss p50 / p99 ms',
            'event-loop delay p99 / max ms',
            'GCs / longest ms',
          ],
          rows,
        },
      ],
      targets: [
        {
          name: 'lookup p99 at 100 members',
          target: '< 5 ms',
          measured: `${fixed(p99, 2)} ms`,
          met: p99 < 5,
        },
      ],
      notes: [
        `p50 is about ${fixed(percentile(at100.hits, 50), 1)} ms at 100 members: one round trip to the key's three owners, asked in parallel; this process runs the asker's three client calls and all three owners' servers, about six times the HTTP work of one bare round trip. In the same run, this process's event-loop delay p99 was ${fixed(at100.pauses.loopP99, 1)} ms during that row, and a bare loopback round trip with no router took p50 ${fixed(percentile(floor.hits, 50), 2)} / p99 ${fixed(percentile(floor.hits, 99), 2)} ms. With the owners in other processes (as owners on other nodes), this process only runs the asker: p50 ${fixed(percentile(apart.hits, 50), 2)} ms, p99 ${fixed(percentile(apart.hits, 99), 2)} ms, the child processes competing for the same 2 cores. No lookup needed more than one round trip (docs/routing.md, "Lookup latency").`,
      ].concat(
        series
          .filter((s) => s.notFound > 0)
          .map((s) => `${s.label}: ${s.notFound} lookups found no holder within ${MEASURE_TIMEOUT_MS} ms.`),
      ),
    };
  },
};
