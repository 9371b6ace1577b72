import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';

/** Every metric the daemon exports, created once against an injected prom-client Registry. */
export interface Metrics {
  /** Registry HTTP requests by route pattern (never the raw URL), method and status code. */
  readonly httpRequests: Counter<'handler' | 'method' | 'code'>;
  /** Registry HTTP request durations, same labels. */
  readonly httpRequestDuration: Histogram<'handler' | 'method' | 'code'>;
  /** Registry HTTP requests being served right now. */
  readonly httpInflight: Gauge<'handler'>;
  /** Body bytes the registry API sent, by where they came from (`local` store or a `peer`). */
  readonly servedBytes: Counter<'source'>;
  /** Mirror outcomes: `outcome` hit|miss, `source` local|peer|none, `kind` manifest|blob. */
  readonly mirrorRequests: Counter<'registry' | 'kind' | 'outcome' | 'source'>;
  /** Time from the start of a lookup to the first holder found, in seconds. */
  readonly lookupDuration: Histogram<'result'>;
  /** Lookups by result: found|notfound|error. */
  readonly lookups: Counter<'result'>;
  /** Bytes this node fetched from peers. */
  readonly peerFetchedBytes: Counter<never>;
  /** Bytes this node served to peers (requests carrying the loop-guard header). */
  readonly peerServedBytes: Counter<never>;
  /** Failed calls to peers, by operation and reason (timeout, refused, status, digest, …). */
  readonly peerErrors: Counter<'operation' | 'reason'>;
  /** Keys this node currently advertises, by kind: digest|tag. */
  readonly advertisedKeys: Gauge<'kind'>;
  /** Keys this node holds in its share of the index (advertised by others), by kind. */
  readonly indexedKeys: Gauge<'kind'>;
  /** Members of the cluster this node currently knows (itself included). */
  readonly members: Gauge<never>;
  /** 1 when the daemon is ready to serve (joined the member set, store reachable), else 0. */
  readonly ready: Gauge<never>;
  /** Bytes of new blobs that entered the local store, by how they arrived: peer|upstream. */
  readonly ingestedBytes: Counter<'via'>;
  /** The node check (mirror/src/node-check): 1 for the current state of each check, 0 for the others. */
  readonly nodeCheck: Gauge<'check' | 'state'>;
  /** 1, labelled with the container runtime and its version as containerd reports it. */
  readonly runtimeInfo: Gauge<'runtime' | 'version'>;
}

/** Prefix of every metric name the daemon exports. */
export const METRIC_PREFIX = 'peili_';

/** Registers every daemon metric (and the process/Node.js defaults) on `registry`. */
export function createMetrics(registry: Registry, options: { defaultMetrics?: boolean } = {}): Metrics {
  const registers = [registry];
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const durationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  return {
    httpRequests: new Counter({
      name: `${METRIC_PREFIX}http_requests_total`,
      help: 'Registry HTTP requests by route pattern, method and status code.',
      labelNames: ['handler', 'method', 'code'],
      registers,
    }),
    httpRequestDuration: new Histogram({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: 'Registry HTTP request duration in seconds, to the last byte sent.',
      labelNames: ['handler', 'method', 'code'],
      buckets: durationBuckets,
      registers,
    }),
    httpInflight: new Gauge({
      name: `${METRIC_PREFIX}http_requests_inflight`,
      help: 'Registry HTTP requests in flight.',
      labelNames: ['handler'],
      registers,
    }),
    servedBytes: new Counter({
      name: `${METRIC_PREFIX}served_bytes_total`,
      help: 'Body bytes sent by the registry API, by source (local store or peer).',
      labelNames: ['source'],
      registers,
    }),
    mirrorRequests: new Counter({
      name: `${METRIC_PREFIX}mirror_requests_total`,
      help: 'Mirror requests from the local containerd by registry, kind, outcome (hit/miss) and source.',
      labelNames: ['registry', 'kind', 'outcome', 'source'],
      registers,
    }),
    lookupDuration: new Histogram({
      name: `${METRIC_PREFIX}lookup_duration_seconds`,
      help: 'Time from the start of a lookup to the first holder found (or the end of the lookup).',
      labelNames: ['result'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    lookups: new Counter({
      name: `${METRIC_PREFIX}lookups_total`,
      help: 'Content lookups by result (found, notfound, error).',
      labelNames: ['result'],
      registers,
    }),
    peerFetchedBytes: new Counter({
      name: `${METRIC_PREFIX}peer_fetched_bytes_total`,
      help: 'Bytes fetched from peers.',
      registers,
    }),
    peerServedBytes: new Counter({
      name: `${METRIC_PREFIX}peer_served_bytes_total`,
      help: 'Bytes served to peers.',
      registers,
    }),
    peerErrors: new Counter({
      name: `${METRIC_PREFIX}peer_errors_total`,
      help: 'Failed calls to peers by operation and reason.',
      labelNames: ['operation', 'reason'],
      registers,
    }),
    advertisedKeys: new Gauge({
      name: `${METRIC_PREFIX}advertised_keys`,
      help: 'Keys this node advertises, by kind (digest, tag).',
      labelNames: ['kind'],
      registers,
    }),
    indexedKeys: new Gauge({
      name: `${METRIC_PREFIX}indexed_keys`,
      help: 'Index entries this node holds for the keys it owns, by kind (digest, tag).',
      labelNames: ['kind'],
      registers,
    }),
    members: new Gauge({
      name: `${METRIC_PREFIX}members`,
      help: 'Cluster members this node knows, itself included.',
      registers,
    }),
    ready: new Gauge({
      name: `${METRIC_PREFIX}ready`,
      help: '1 when the daemon is ready to serve, else 0.',
      registers,
    }),
    ingestedBytes: new Counter({
      name: `${METRIC_PREFIX}ingested_bytes_total`,
      help: 'Bytes of new blobs that entered the local store, by how they arrived (peer, upstream).',
      labelNames: ['via'],
      registers,
    }),
    nodeCheck: new Gauge({
      name: `${METRIC_PREFIX}node_check`,
      help: 'Node check: 1 for the current state of each check (mirror: configured|not-configured|unknown; layers: kept|discarded|unknown).',
      labelNames: ['check', 'state'],
      registers,
    }),
    runtimeInfo: new Gauge({
      name: `${METRIC_PREFIX}runtime_info`,
      help: 'The container runtime of the node and its version (value 1).',
      labelNames: ['runtime', 'version'],
      registers,
    }),
  };
}
