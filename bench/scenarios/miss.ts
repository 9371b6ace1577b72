// Scenario 5: how fast a node's mirror answers 404 for content nobody holds, so that containerd
// falls back to the upstream at once.
import type { Scenario } from '../context.js';
import { digestKey } from '../keys.js';
import { fixed, percentile, summarize } from '../stats.js';

/** The miss scenario. */
export const miss: Scenario = {
  id: 'miss',
  title: '5. Miss',
  usesBed: true,
  async run(ctx) {
    const bed = await ctx.bed();
    const count = ctx.quick ? 300 : 1000;
    const ns = encodeURIComponent(bed.registryHost);
    const kinds = [
      { label: 'GET blob', method: 'GET', path: 'blobs' },
      { label: 'HEAD blob', method: 'HEAD', path: 'blobs' },
      { label: 'GET manifest by digest', method: 'GET', path: 'manifests' },
    ] as const;
    const rows: string[][] = [];
    const all: number[] = [];
    for (const kind of kinds) {
      const times: number[] = [];
      for (let i = 0; i < count + 20; i++) {
        ctx.signal.throwIfAborted();
        const url = `${bed.nodes[1]!.mirrorUrl}/v2/bench/absent/${kind.path}/${digestKey(`miss-${Math.random()}`)}?ns=${ns}`;
        const started = performance.now();
        const response = await fetch(url, { method: kind.method });
        await response.arrayBuffer();
        const ms = performance.now() - started;
        if (response.status !== 404) throw new Error(`${kind.label}: expected 404, got ${response.status}`);
        if (i >= 20) times.push(ms); // the first ones open connections and warm the JIT
      }
      all.push(...times);
      const s = summarize(times);
      rows.push([
        kind.label,
        String(times.length),
        fixed(s.median, 2),
        fixed(s.p75, 2),
        fixed(percentile(times, 99), 2),
        fixed(s.max, 1),
      ]);
    }
    const p99 = percentile(all, 99);
    rows.push([
      'all',
      String(all.length),
      fixed(summarize(all).median, 2),
      fixed(summarize(all).p75, 2),
      `**${fixed(p99, 2)}**`,
      fixed(summarize(all).max, 1),
    ]);
    return {
      method: [
        "Requests for random digests nobody holds, sent to node 2's Peili registry the way containerd sends them (`?ns=<registry>`, no `X-Peili-Mirrored`), one after another over a kept-alive connection, from request start to the full 404 answer. Node 2 looks the digest up (asks its owners, all of which answer empty) and answers 404.",
        `${count} requests per kind after 20 warm-up requests; the daemons run with their default \`--lookup-timeout\` of 20 ms.`,
      ],
      tables: [{ columns: ['request', 'n', 'p50 ms', 'p75 ms', 'p99 ms', 'max ms'], rows }],
      targets: [
        { name: 'time to 404, p99', target: '< 25 ms', measured: `${fixed(p99, 2)} ms`, met: p99 < 25 },
      ],
      notes: [],
    };
  },
};
