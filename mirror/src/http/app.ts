import type { OutgoingHttpHeaders } from 'node:http';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Metrics } from '../metrics/metrics.js';
import { MIRRORED_HEADER } from '../peer-transport/headers.js';
import { OciError, isOciError, unsupportedMethod } from '../oci/errors.js';
import type { AccessControl } from '../access/upstream-access.js';
import type { RegistryService, ServeResult } from '../registry/registry-service.js';
import { FileBody } from '../store/file-body.js';
import { processReclaimer, type BufferReclaimer } from './buffer-reclaim.js';
import { parseRegistryPath, routePattern, type RegistryPath, type RoutePattern } from './registry-path.js';

/** The version header every registry response carries. */
export const API_VERSION_HEADER = 'docker-distribution-api-version';

/** Where and how loudly the registry API logs (pino through fastify). */
export interface AppLoggerOptions {
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  readonly level: string;
  /** Destination; stdout when omitted. Tests pass a stream to read the JSON lines. */
  readonly stream?: { write(line: string): void };
}

/** Collaborators of {@link buildApp}. */
export interface AppDeps {
  readonly service: RegistryService;
  /** HTTP and served-bytes metrics; none are recorded when omitted. */
  readonly metrics?: Metrics;
  /** Structured JSON logs; `false` (the default) disables logging. */
  readonly logger?: AppLoggerOptions | false;
  /**
   * Verifies a loop-guarded (peer) request's signature; such requests without a valid one get 401.
   * Every peer request is trusted when omitted (no shared secret configured).
   */
  readonly authenticatePeer?: (request: {
    method: string;
    url: string;
    headers: Readonly<Record<string, string | string[] | undefined>>;
    body: string;
  }) => boolean;
  /**
   * Private registries: `control` decides per request; requests it grants `private` are served by
   * `privateService` (the whole store), all others by `service` (which should hide private-only
   * content). Without it every request goes to `service`.
   */
  readonly access?: { readonly control: AccessControl; readonly privateService: RegistryService };
  /**
   * Told the size of every streamed chunk, to collect sent chunks early (see buffer-reclaim.ts).
   * @default processReclaimer (collects only when Node.js runs with --expose-gc)
   */
  readonly reclaimer?: BufferReclaimer;
}

/** Server tunables of {@link buildApp}; defaults in {@link APP_DEFAULTS}. */
export interface AppOptions {
  /** Largest request head (request line + headers) in bytes; larger gets 431. */
  readonly maxHeaderSize?: number;
  /** Time in ms a client has to send its whole request (node's `requestTimeout`). */
  readonly requestTimeout?: number;
  /** Socket inactivity timeout in ms (a stalled download is cut after this). */
  readonly connectionTimeout?: number;
  /** Idle keep-alive connections are closed after this many ms. */
  readonly keepAliveTimeout?: number;
  /** Answer 503 to new requests while the server is closing (SIGTERM). */
  readonly return503OnClosing?: boolean;
  /**
   * Registry requests (`/v2/<name>/…`) served at once; more get 503 + `Retry-After`, which
   * containerd treats as "try the next host", so memory stays bounded under a burst.
   */
  readonly maxConcurrentRequests?: number;
  /**
   * Who this listener serves. `accept`: containerd and peers (loop-guarded requests) alike.
   * `refuse`: the plain registry port when peers speak mutual TLS: loop-guarded requests get 403,
   * so content never crosses nodes in clear text. `only`: the mutual-TLS peer listener: every
   * request is a peer request (local content only), its peer authenticated by the connection.
   */
  readonly peerRequests?: 'accept' | 'refuse' | 'only';
}

/** Defaults of {@link AppOptions}, in one place. */
export const APP_DEFAULTS: Readonly<Required<AppOptions>> = Object.freeze({
  maxHeaderSize: 16 * 1024,
  requestTimeout: 10_000,
  connectionTimeout: 60_000,
  keepAliveTimeout: 75_000,
  return503OnClosing: true,
  maxConcurrentRequests: 64,
  peerRequests: 'accept',
});

declare module 'fastify' {
  interface FastifyRequest {
    /** The parsed `/v2/…` path (undefined when the path is not a registry endpoint). */
    registryPath: RegistryPath | undefined;
    /** The `handler` metric label. */
    routeLabel: RoutePattern;
    /** Aborted when the client goes away before the response finished. */
    abortSignal: AbortSignal;
  }
}

/** Counts bytes as they flow to the client, without changing the stream's pace. */
class ByteCounter extends Transform {
  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.onBytes(chunk.length);
    callback(null, chunk);
  }
}

function errorBody(error: OciError): string {
  return JSON.stringify({ errors: [error.toJSON()] });
}

/** Maps anything thrown to the OciError answered: fastify's own 4xx keep their status. */
function toOciError(error: unknown): OciError {
  if (isOciError(error)) return error;
  const status = (error as FastifyError | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = status === 404 ? 'NAME_UNKNOWN' : status === 429 ? 'TOOMANYREQUESTS' : 'UNSUPPORTED';
    return new OciError(code, { status, message: (error as Error).message, cause: error });
  }
  return new OciError('UNAVAILABLE', { status: 500, message: 'internal server error', cause: error });
}

function logError(log: FastifyBaseLogger, error: OciError, request: FastifyRequest): void {
  const context = {
    code: error.code,
    status: error.status,
    handler: request.routeLabel,
    method: request.method,
  };
  if (error.status >= 500) {
    log.error({ ...context, err: error.cause ?? error }, error.message);
  } else if (error.status === 404) {
    log.debug(context, error.message);
  } else {
    log.warn(context, error.message);
  }
}

// Headers of a success that must not leak onto an error answered after them.
const CONTENT_HEADERS = [
  'content-type',
  'content-length',
  'docker-content-digest',
  'content-range',
  'accept-ranges',
];

/**
 * Builds the registry API: `GET|HEAD /v2/`, `/v2/<name>/manifests/<ref>` and
 * `/v2/<name>/blobs/<digest>` (`?ns=<registry>`, `X-Peili-Mirrored: true` marks a peer). Routes
 * only parse and stream; the service decides. Errors become the distribution spec's JSON body.
 */
export function buildApp(deps: AppDeps, options: AppOptions = {}): FastifyInstance {
  const opts = { ...APP_DEFAULTS, ...options };
  const { service, metrics } = deps;
  const reclaimer = deps.reclaimer ?? processReclaimer;
  const app = Fastify({
    logger: deps.logger
      ? { level: deps.logger.level, ...(deps.logger.stream ? { stream: deps.logger.stream } : {}) }
      : false,
    // Per-request lines are written once, in the onResponse hook below, at debug level.
    logController: new LogController({ disableRequestLogging: true }),
    // Node checks request timeouts only every `connectionsCheckingInterval` (30 s by default): a
    // client that never finishes its request head would otherwise hold a socket that long.
    http: {
      maxHeaderSize: opts.maxHeaderSize,
      connectionsCheckingInterval: opts.requestTimeout > 0 ? Math.min(1_000, opts.requestTimeout) : 30_000,
    },
    requestTimeout: opts.requestTimeout,
    connectionTimeout: opts.connectionTimeout,
    keepAliveTimeout: opts.keepAliveTimeout,
    return503OnClosing: opts.return503OnClosing,
    exposeHeadRoutes: false,
    // Undecodable paths bypass the hooks: answer them like any unknown path, with the same bookkeeping.
    frameworkErrors: (error, request, reply) => {
      track(request, reply);
      const notFound = new OciError('NAME_UNKNOWN', {
        message: 'no registry endpoint at this path',
        cause: error,
      });
      answerError(notFound, request, reply);
    },
    // Names up to 255 characters plus a digest exceed find-my-way's default parameter length of 100.
    routerOptions: { maxParamLength: 2048, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false },
  });

  app.decorateRequest('registryPath', undefined);
  app.decorateRequest('routeLabel', 'unknown');
  app.decorateRequest('abortSignal', undefined as unknown as AbortSignal);

  // Bodies are never read: every method but GET/HEAD is answered 405 without parsing.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  /** Starts the per-request bookkeeping: parsed path, abort signal, in-flight and duration metrics. */
  function track(request: FastifyRequest, reply: FastifyReply): void {
    const path = request.url.split('?', 1)[0] ?? '';
    request.registryPath = parseRegistryPath(path);
    request.routeLabel = routePattern(request.registryPath);
    const controller = new AbortController();
    request.abortSignal = controller.signal;
    const started = process.hrtime.bigint();
    const handler = request.routeLabel;
    metrics?.httpInflight.inc({ handler });
    // 'close' fires for finished and aborted responses alike (onResponse misses aborted ones).
    reply.raw.once('close', () => {
      const completed = reply.raw.writableEnded;
      if (!completed) controller.abort(new Error('client closed the connection'));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const labels = { handler, method: request.method, code: String(reply.statusCode) };
      metrics?.httpInflight.dec({ handler });
      metrics?.httpRequests.inc(labels);
      metrics?.httpRequestDuration.observe(labels, seconds);
      request.log.debug({ ...labels, seconds, completed, fromPeer: isFromPeer(request) }, 'request served');
    });
    reply.header(API_VERSION_HEADER, 'registry/2.0');
  }

  /** The one place errors are answered (and logged, once). */
  function answerError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const oci = toOciError(error);
    logError(request.log, oci, request);
    for (const name of CONTENT_HEADERS) reply.removeHeader(name);
    reply.code(oci.status).headers(oci.headers);
    if (request.method === 'HEAD') return reply.send();
    return reply.type('application/json; charset=utf-8').send(errorBody(oci));
  }

  // Requests being served right now; only content endpoints count (the `/v2/` ping stays cheap).
  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    track(request, reply);
    const kind = request.registryPath?.kind;
    if (kind !== 'manifest' && kind !== 'blob') return;
    if (inFlight >= opts.maxConcurrentRequests) {
      throw new OciError('UNAVAILABLE', {
        message: `more than ${opts.maxConcurrentRequests} requests in flight; try the next host`,
        headers: { 'retry-after': '1' },
      });
    }
    inFlight++;
    reply.raw.once('close', () => inFlight--);
  });
  app.setErrorHandler((error: unknown, request, reply) => answerError(error, request, reply));

  app.setNotFoundHandler(async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') throw unsupportedMethod(request.method);
    throw new OciError('NAME_UNKNOWN', { message: 'no registry endpoint at this path' });
  });

  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2/',
    handler: async (request, reply) => {
      reply.type('application/json; charset=utf-8');
      if (request.method === 'HEAD') return reply.header('content-length', 2).send();
      return reply.send('{}');
    },
  });

  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2/*',
    handler: async (request, reply) => {
      const parsed = request.registryPath;
      if (parsed === undefined || parsed.kind === 'base') {
        throw new OciError('NAME_UNKNOWN', { message: 'no registry endpoint at this path' });
      }
      const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
      const fromPeer = opts.peerRequests === 'only' || isFromPeer(request);
      if (fromPeer && opts.peerRequests === 'refuse') {
        throw new OciError('DENIED', {
          message: 'peer requests are served only on the mutual-TLS peer port',
        });
      }
      if (
        fromPeer &&
        deps.authenticatePeer &&
        !deps.authenticatePeer({
          method: request.method,
          url: request.url,
          headers: request.headers,
          body: '',
        })
      ) {
        throw new OciError('UNAUTHORIZED', { message: 'peer request without a valid signature' });
      }
      const registry = namespaceOf(request.query);
      let target = service;
      if (deps.access) {
        const grant = await deps.access.control.authorize(
          {
            registry,
            repository: parsed.name,
            kind: parsed.kind === 'manifest' ? 'manifests' : 'blobs',
            reference: parsed.kind === 'manifest' ? parsed.reference : parsed.digest,
            fromPeer,
            // Signed (checked above) or arrived over a mutual-TLS connection.
            peerAuthenticated:
              fromPeer && (deps.authenticatePeer !== undefined || opts.peerRequests === 'only'),
            authorization: request.headers.authorization,
          },
          request.abortSignal,
        );
        if (grant === 'private') target = deps.access.privateService;
      }
      const result =
        parsed.kind === 'manifest'
          ? await target.manifest(
              { registry, repository: parsed.name, reference: parsed.reference, method, fromPeer },
              request.abortSignal,
            )
          : await target.blob(
              {
                registry,
                repository: parsed.name,
                digest: parsed.digest,
                range: rangeOf(request),
                method,
                fromPeer,
              },
              request.abortSignal,
            );
      return send(reply, result, method, fromPeer);
    },
  });

  function countServed(source: ServeResult['source'], fromPeer: boolean, bytes: number): void {
    metrics?.servedBytes.inc({ source }, bytes);
    if (fromPeer) metrics?.peerServedBytes.inc(bytes);
  }

  function send(
    reply: FastifyReply,
    result: ServeResult,
    method: 'GET' | 'HEAD',
    fromPeer: boolean,
  ): FastifyReply {
    const { headers } = result;
    reply.code(result.status);
    reply.header('content-type', headers.contentType);
    reply.header('content-length', headers.contentLength);
    reply.header('docker-content-digest', headers.digest);
    if (headers.acceptRanges) reply.header('accept-ranges', headers.acceptRanges);
    if (headers.contentRange) reply.header('content-range', headers.contentRange);
    const body = result.body;
    if (method === 'HEAD' || body === undefined) {
      if (body !== undefined && !Buffer.isBuffer(body)) body.destroy();
      return reply.send();
    }
    if (Buffer.isBuffer(body)) {
      countServed(result.source, fromPeer, body.length);
      return reply.send(body);
    }
    if (body instanceof FileBody) {
      // Written by the body itself, through reused buffers (see file-body.ts); the bookkeeping
      // on the raw response's 'close' (metrics, in-flight count, abort) still runs.
      reply.hijack();
      reply.raw.writeHead(result.status, reply.getHeaders() as OutgoingHttpHeaders);
      body.sendTo(reply.raw, (n) => countServed(result.source, fromPeer, n));
      return reply;
    }
    return reply.send(
      counted(body, (n) => {
        countServed(result.source, fromPeer, n);
        reclaimer.streamed(n);
      }),
    );
  }

  return app;
}

/** Pipes `source` through a byte counter; destroying the result (client gone) destroys the source. */
function counted(source: Readable, onBytes: (n: number) => void): Readable {
  const counter = new ByteCounter(onBytes);
  // Errors reach fastify through `counter` (pipeline forwards them); nothing to do here.
  pipeline(source, counter, () => {});
  return counter;
}

function isFromPeer(request: FastifyRequest): boolean {
  return request.headers[MIRRORED_HEADER]?.toString().toLowerCase() === 'true';
}

/** The `ns` query parameter: absent or empty → undefined; repeated → NAME_INVALID. */
function namespaceOf(query: unknown): string | undefined {
  const ns = (query as Record<string, string | string[] | undefined> | undefined)?.['ns'];
  if (Array.isArray(ns))
    throw new OciError('NAME_INVALID', { message: 'the ns parameter is given more than once' });
  return ns === undefined || ns === '' ? undefined : ns;
}

function rangeOf(request: FastifyRequest): string | undefined {
  const range = request.headers.range;
  return typeof range === 'string' ? range : undefined;
}
