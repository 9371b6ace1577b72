// Composition root of `peili registry`: config → containerd store, router, mirror path, registry
// API, peer protocol and ops endpoint, wired together; runs until the signal aborts (SIGTERM),
// then stops accepting and gives in-flight streams `shutdownTimeout` to finish.
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Address, RegistryConfig } from './config.js';
import { hidePrivateContent } from './access/private-content.js';
import { createUpstreamAccess } from './access/upstream-access.js';
import { createContainerdStore, type ContainerdStore } from './containerd/containerd-store.js';
import { buildApp } from './http/app.js';
import { buildOpsApp } from './http/ops-app.js';
import { createPeerListener } from './http/peer-listener.js';
import { initKnownSeries } from './metrics/known-series.js';
import { createMetrics } from './metrics/metrics.js';
import { createNodeCheck } from './node-check/node-check.js';
import { startNodeCheck } from './node-check/reporter.js';
import { createPeerAuth, type PeerAuth } from './peer-auth/peer-auth.js';
import { loadPeerTls } from './peer-tls/peer-tls.js';
import { stopHashWorker } from './registry/blob-hasher.js';
import { createPeerHttpClient } from './peer-transport/peer-http-client.js';
import { createPeerSource } from './registry/peer-fetch.js';
import { createRegistryService } from './registry/registry-service.js';
import { createTagPolicy } from './registry/tag-policies.js';
import { createUpstreamProbe } from './registry/upstream-probe.js';
import { createAdvertiser } from './routing/advertiser.js';
import { createDnsMembers, createStaticMembers, type MemberSource } from './routing/membership.js';
import { createHttpPeerClient } from './routing/peer-client.js';
import { createP2PRouter } from './routing/p2p-router.js';
import { buildPeerApp } from './routing/peer-server.js';
import { callSignal } from './routing/abort.js';

/** How often the daemon checks that containerd answers (feeds `/readyz`). */
const STORE_HEALTH_INTERVAL_MS = 5_000;

/** `host:port` with IPv6 hosts in brackets, as URLs and member ids need it. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The members this node starts from: a static list, the headless Service's DNS records, or itself alone. */
export function memberSourceFor(config: RegistryConfig, selfId: string): MemberSource {
  if (config.members.length > 0) {
    return createStaticMembers(config.members.map((member) => hostPort(member.host, member.port)));
  }
  if (config.membersDns !== undefined) {
    return createDnsMembers({ name: config.membersDns, port: config.routerAddr.port });
  }
  return createStaticMembers([selfId]);
}

async function listen(app: FastifyInstance, address: Address): Promise<void> {
  await app.listen({ host: address.host, port: address.port });
}

/** Closes `app`, cutting the connections still open after `timeoutMs` (stalled or long streams). */
async function closeWithin(app: FastifyInstance, timeoutMs: number): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), timeoutMs);
  timer.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}

/** Tracks whether containerd answers, re-checked on an interval; never throws. */
function watchStore(store: ContainerdStore, log: Logger, signal: AbortSignal): () => boolean {
  let up = false;
  const check = async (): Promise<void> => {
    // Not AbortSignal.any: on Node 20 every signal derived from a long-lived one is kept alive.
    const call = callSignal([signal], 2_000);
    try {
      await store.containerdVersion(call.signal);
      if (!up) log.info('containerd reachable');
      up = true;
    } catch (error) {
      if (signal.aborted) return;
      if (up) log.warn({ err: error }, 'containerd unreachable; not ready until it answers');
      up = false;
    } finally {
      call.dispose();
    }
  };
  void check();
  const timer = setInterval(() => void check(), STORE_HEALTH_INTERVAL_MS);
  timer.unref();
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  return () => up;
}

async function loadPeerAuth(config: RegistryConfig): Promise<PeerAuth | undefined> {
  if (config.peerSecretFile === undefined) return undefined;
  const secret = (await readFile(config.peerSecretFile, 'utf8')).trim();
  return createPeerAuth(secret, { field: '--peer-secret-file' });
}

/** Runs the registry daemon until `signal` aborts; resolves once everything is closed. */
export async function runRegistry(
  config: RegistryConfig,
  signal: AbortSignal = new AbortController().signal,
): Promise<void> {
  const log = pino({ level: config.logLevel, base: { component: 'peili' } });
  const registry = new Registry();
  const metrics = createMetrics(registry);
  initKnownSeries(metrics);
  const peerAuth = await loadPeerAuth(config);
  // With peer TLS every exchange between daemons goes to the mutual-TLS router port, content
  // included: the plain registry port is left to the node's own containerd.
  const peerTls = config.peerTls === undefined ? undefined : await loadPeerTls(config.peerTls);
  const peerScheme = peerTls ? 'https' : 'http';

  const selfId = hostPort(config.advertiseHost, config.routerAddr.port);
  const self = {
    id: selfId,
    registryUrl: peerTls
      ? `https://${selfId}`
      : `http://${hostPort(config.advertiseHost, config.registryAddr.port)}`,
    routerUrl: `${peerScheme}://${selfId}`,
  };
  const store = createContainerdStore({
    socket: config.containerdSock,
    namespace: config.containerdNamespace,
    contentPath: config.containerdContentPath,
  });
  // One pool of keep-alive connections to the peers, for the peer protocol and content alike.
  const peerHttp = createPeerHttpClient({ tls: peerTls?.clientOptions });
  const router = createP2PRouter(
    {
      members: memberSourceFor(config, selfId),
      self,
      metrics,
      logger: log.child({ component: 'router' }),
      client: createHttpPeerClient({ sign: peerAuth?.sign, http: peerHttp }),
    },
    {
      lookupTimeoutMs: config.lookupTimeout,
      membership: { refreshIntervalMs: config.membersRefresh, routerScheme: peerScheme },
    },
  );
  const peers = createPeerSource(
    {
      router,
      metrics,
      logger: log.child({ component: 'peers' }),
      sign: peerAuth?.sign,
      http: peerHttp,
    },
    { lookupTimeout: config.lookupTimeout },
  );
  const tagPolicy = createTagPolicy(
    { probe: createUpstreamProbe({}, { timeout: config.upstreamProbeTimeout }) },
    { mode: config.resolveTags, filters: config.resolveTagsFilter },
  );
  const serviceOptions = { mirroredRegistries: [...config.mirroredRegistries] };
  const privateRegistries = [...config.privateRegistries];
  // With private registries, requests that did not prove access upstream see a store without
  // private-only content; those that did are served from the whole store.
  const service = createRegistryService(
    {
      store: privateRegistries.length > 0 ? hidePrivateContent(store, privateRegistries) : store,
      peers,
      tagPolicy,
      metrics,
    },
    serviceOptions,
  );
  const access =
    privateRegistries.length > 0
      ? {
          control: createUpstreamAccess({}, { registries: privateRegistries }),
          privateService: createRegistryService({ store, peers, tagPolicy, metrics }, serviceOptions),
        }
      : undefined;
  if (access && peerAuth === undefined && peerTls === undefined) {
    log.warn(
      { privateRegistries },
      'private registries without --peer-secret-file or peer TLS: their content is never served to or from peers',
    );
  }

  const stopping = new AbortController();
  const running = AbortSignal.any([signal, stopping.signal]);
  const storeUp = watchStore(store, log, running);
  const ready = (): boolean => storeUp() && router.ready();
  const readyGauge = setInterval(() => metrics.ready.set(ready() ? 1 : 0), 1_000);
  readyGauge.unref();

  const registryDeps = {
    service,
    metrics,
    logger: { level: config.logLevel },
    ...(peerAuth ? { authenticatePeer: peerAuth.verify } : {}),
    ...(access ? { access } : {}),
  };
  const registryApp = buildApp(registryDeps, {
    maxConcurrentRequests: config.maxConcurrentRequests,
    peerRequests: peerTls ? 'refuse' : 'accept',
  });
  const peerApp = buildPeerApp({
    index: router.index,
    authenticate: peerAuth?.verify,
    // Requests name their sender: a member seen with a new boot id gets its keys back at once.
    onCaller: (caller) => router.peerSeen(caller),
  });
  // What this node really does for peers: does containerd ask us, does it keep layers (see
  // node-check.ts). Requests from containerd are the mirror outcomes counted per request (peers'
  // requests are not counted there).
  const nodeCheck = createNodeCheck(
    {
      store,
      runtime: store,
      requestsSeen: async () =>
        (await metrics.mirrorRequests.get()).values.reduce((sum, v) => sum + v.value, 0),
    },
    { mirroredRegistries: [...config.mirroredRegistries] },
  );
  const opsApp = buildOpsApp({ registry, ready, nodeReport: () => nodeCheck.latest() });
  const peerListener = peerTls
    ? createPeerListener(
        {
          registry: buildApp(registryDeps, {
            maxConcurrentRequests: config.maxConcurrentRequests,
            peerRequests: 'only',
          }),
          router: peerApp,
        },
        {
          tls: peerTls.serverOptions,
          checkPeer: (socket) => peerTls.checkPeer(socket),
          onRefused: (reason, remote) => log.warn({ remote }, `peer connection refused: ${reason}`),
        },
      )
    : undefined;
  const advertiser = createAdvertiser({
    store,
    router,
    metrics,
    logger: log.child({ component: 'advertiser' }),
    servedFromPeer: (digest) => peers.servedFromPeer(digest),
  });

  try {
    await listen(opsApp, config.metricsAddr);
    if (peerListener) await peerListener.listen(config.routerAddr.host, config.routerAddr.port);
    else await listen(peerApp, config.routerAddr);
    await listen(registryApp, config.registryAddr);
    await router.start(running);
    await advertiser.start(running);
    startNodeCheck(nodeCheck, { metrics, logger: log.child({ component: 'node-check' }) }, running);
    log.info(
      {
        registry: config.registryAddr,
        router: config.routerAddr,
        metrics: config.metricsAddr,
        self,
        peerTls: peerTls ? { name: peerTls.name } : false,
      },
      'peili registry started',
    );
    if (!signal.aborted) {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    log.info({ shutdownTimeoutMs: config.shutdownTimeout }, 'shutting down');
  } finally {
    stopping.abort();
    clearInterval(readyGauge);
    // The registry first: containerd gets 503s (and falls back) while the rest winds down.
    await closeWithin(registryApp, config.shutdownTimeout);
    await Promise.allSettled([
      peerListener ? peerListener.close(config.shutdownTimeout) : peerApp.close(),
      opsApp.close(),
      advertiser.stopped(),
    ]);
    // Withdrawn at once, so peers stop being sent here before the keys' TTL runs out.
    await router.close({ withdraw: true, signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
    peerHttp.close();
    store.close();
    await stopHashWorker();
    log.info('peili registry stopped');
  }
}
