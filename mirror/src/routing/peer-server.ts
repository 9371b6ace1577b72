// The peer protocol over HTTP: a fastify app that validates, authenticates and hands requests to
// the framework-free PeerService. The only file of the routing layer that imports fastify.
import fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { createPeerService, type CallerObserver, type PeerService } from './peer-service.js';
import type { IndexStore } from './index-store.js';
import {
  MAX_BODY_BYTES,
  PROTOCOL_PREFIX,
  ProtocolError,
  parseAdvertiseRequest,
  parseCaller,
  parseKeys,
  parseLookupRequest,
  parseWithdrawRequest,
} from './protocol.js';

/** What an authenticator sees of a request: enough to check a signature over method, path and body. */
export interface PeerRequestInfo {
  readonly method: string;
  /** Path and query as sent, e.g. `/peili/v1/lookup?key=…`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The raw body bytes (empty for GET). */
  readonly body: Buffer;
}

/** Decides whether a peer request may proceed (e.g. a shared-secret HMAC header); false → 401. */
export type PeerAuthenticator = (request: PeerRequestInfo) => boolean | Promise<boolean>;

/** Dependencies and options of `buildPeerApp`. */
export interface PeerAppOptions {
  /** The index share this node owns (or a ready-made service over it). */
  readonly index?: IndexStore;
  readonly service?: PeerService;
  /** Sees the sender of every request that names one (with `index`; the router's `peerSeen`). */
  readonly onCaller?: CallerObserver;
  /** Request verifier; every request is accepted when omitted. */
  readonly authenticate?: PeerAuthenticator;
  /** Largest accepted body in bytes. @default MAX_BODY_BYTES */
  readonly bodyLimit?: number;
  /** fastify logger option. @default false */
  readonly logger?: FastifyServerOptions['logger'];
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

/** Builds the fastify app serving `/peili/v1/…` (not listening: the caller calls `listen`). */
export function buildPeerApp(options: PeerAppOptions): FastifyInstance {
  const service =
    options.service ??
    (options.index ? createPeerService(options.index, Date.now, options.onCaller) : undefined);
  if (!service) throw new Error('buildPeerApp needs an index or a service');
  const bodyLimit = options.bodyLimit ?? MAX_BODY_BYTES;
  const app = fastify({ logger: options.logger ?? false, bodyLimit, keepAliveTimeout: 65_000 });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    try {
      done(null, JSON.parse(raw.toString('utf8')) as unknown);
    } catch {
      done(new ProtocolError(400, 'body is not valid JSON'), undefined);
    }
  });

  const authenticate = options.authenticate;
  if (authenticate) {
    app.addHook('preHandler', async (request) => {
      const ok = await authenticate({
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.rawBody ?? Buffer.alloc(0),
      });
      if (!ok) throw new ProtocolError(401, 'peer authentication failed');
    });
  }

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof ProtocolError) return reply.code(error.statusCode).send({ error: error.message });
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: `body exceeds ${bodyLimit} bytes` });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).send({ error: 'content-type must be application/json' });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ error: error.message });
    }
    request.log.error({ err: error }, 'peer request failed');
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  app.post(`${PROTOCOL_PREFIX}/advertise`, async (request) =>
    service.advertise(parseAdvertiseRequest(request.body), parseCaller(request.query)),
  );
  app.post(`${PROTOCOL_PREFIX}/withdraw`, async (request) =>
    service.withdraw(parseWithdrawRequest(request.body), parseCaller(request.query)),
  );
  app.post(`${PROTOCOL_PREFIX}/lookup`, async (request) =>
    service.lookup(parseLookupRequest(request.body), parseCaller(request.query)),
  );
  app.get(`${PROTOCOL_PREFIX}/lookup`, async (request) => {
    const query = request.query as Record<string, string | string[] | undefined>;
    const key = query.key;
    if (typeof key !== 'string') throw new ProtocolError(400, 'query parameter key is required once');
    return service.lookup({ keys: parseKeys([key]) }, parseCaller(query));
  });
  return app;
}
