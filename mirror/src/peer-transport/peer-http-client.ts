// The one HTTP client for everything a daemon asks another: peer-protocol calls (`/peili/v1/…`)
// and content fetches (`/v2/…`). node:http(s) with keep-alive agents rather than the global
// fetch: relaying a blob through fetch's web streams cost about 40 % of the relay's throughput
// (BENCHMARKS.md, peer hop); an IncomingMessage hands over the socket's Buffers as they are, with
// Node stream backpressure (pause/resume) instead of a promise per chunk.
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import { systemClock, type Clock } from '../clock/clock.js';
import { PeerError } from './peer-error.js';

/**
 * TLS settings for `https:` peer URLs: the cluster CA, this daemon's client identity, the name
 * every peer certificate carries (sent as SNI and checked instead of the address).
 * `peer-tls/` builds it from the `--peer-tls-*` files.
 */
export type PeerTlsClientOptions = Pick<
  ConnectionOptions,
  'ca' | 'cert' | 'key' | 'servername' | 'checkServerIdentity' | 'minVersion'
>;

/** A response whose headers arrived; `body` is not read yet (destroy it, or read it to the end). */
export interface PeerResponse {
  readonly status: number;
  /** The first value of a header (lower-case name), or undefined. */
  header(name: string): string | undefined;
  readonly body: IncomingMessage;
}

/** One request to a peer. */
export interface PeerRequestInit {
  readonly method: 'GET' | 'HEAD' | 'POST';
  readonly headers: Record<string, string>;
  /** A request body (peer-protocol POSTs); its Content-Length is set here. */
  readonly body?: string;
  /**
   * Aborting it fails a pending request and cuts a body being read; a body that is over or
   * small is drained instead, to keep the connection.
   */
  readonly signal: AbortSignal;
}

/** A whole answer, read within a size limit. */
export interface PeerTextAnswer {
  readonly status: number;
  readonly text: string;
}

/** Sends requests to peers over pooled keep-alive connections. */
export interface PeerHttpClient {
  /**
   * Resolves with the response once its headers arrived; rejects with a {@link PeerError}
   * (`refused`, `network` or `aborted`; `code` says more).
   */
  request(url: string, init: PeerRequestInit): Promise<PeerResponse>;
  /**
   * Sends a request and reads its whole answer as text: larger than `maxBytes` (declared or
   * read) fails with reason `toolarge` before more is read.
   */
  text(url: string, init: PeerRequestInit, maxBytes: number): Promise<PeerTextAnswer>;
  /** Closes the idle pooled connections. */
  close(): void;
}

/** Options of {@link createPeerHttpClient}. */
export interface PeerHttpClientOptions {
  /** TLS for `https:` URLs; without it an `https:` URL fails. */
  readonly tls?: PeerTlsClientOptions;
  /** How long an idle pooled connection is kept, in ms (well below the peers' keep-alive timeout). @default 30000 */
  readonly idleSocketTimeout?: number;
  /** Times the drain of an aborted body. @default systemClock */
  readonly clock?: Clock;
}

/** Error codes of a kept-alive connection the peer closed while it sat in our pool. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);
/** Bodies at most this large are read to their end when aborted, to keep their connection. */
const DRAIN_LIMIT = 64 * 1024;
/** How long an aborted body may take to drain before its connection is cut after all. */
const DRAIN_TIMEOUT = 1_000;

/** A request failure, and whether it happened on a pooled connection (a stale one can be retried). */
class RequestFailure extends PeerError {
  constructor(
    error: PeerError,
    readonly reused: boolean,
  ) {
    super(error.reason, error.message, { code: error.code });
  }
}

function failureOf(error: NodeJS.ErrnoException): PeerError {
  if (error instanceof PeerError) return error;
  if (error.code === 'ECONNREFUSED') return new PeerError('refused', error.message, { code: error.code });
  if (error.code === 'ABORT_ERR') return new PeerError('aborted', error.message, { code: error.code });
  return new PeerError('network', error.message, { code: error.code });
}

/** Creates the client with its own agents (one per scheme). */
export function createPeerHttpClient(options: PeerHttpClientOptions = {}): PeerHttpClient {
  const idle = options.idleSocketTimeout ?? 30_000;
  const clock = options.clock ?? systemClock;
  // LIFO reuses the warmest connection and lets the others time out when traffic drops.
  const http = new HttpAgent({ keepAlive: true, timeout: idle, scheduling: 'lifo' });
  const https = new HttpsAgent({ keepAlive: true, timeout: idle, scheduling: 'lifo', ...options.tls });

  const drain = (req: ClientRequest, body: IncomingMessage): void => {
    const guard = clock.setTimeout(() => req.destroy(), DRAIN_TIMEOUT).unref();
    body.once('close', () => guard.cancel());
    body.resume();
  };

  const once = (url: URL, init: PeerRequestInit): Promise<PeerResponse> =>
    new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') {
        reject(new PeerError('network', `unsupported peer URL scheme ${url.protocol}`));
        return;
      }
      if (secure && options.tls === undefined) {
        reject(
          new PeerError('network', `${url.href}: https peer URL but no peer TLS configured`, {
            code: 'NO_TLS',
          }),
        );
        return;
      }
      const headers =
        init.body === undefined
          ? init.headers
          : { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) };
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method: init.method,
        headers,
        agent: secure ? https : http,
      });
      let body: IncomingMessage | undefined;
      // Aborting must not cost the connection when the answer is over or nearly so (a HEAD, a
      // 404, a fully read manifest): those are drained so the socket goes back to the pool.
      // Anything else still arriving (a hedge that lost a blob race) is cut.
      const onAbort = (): void => {
        if (body === undefined) {
          req.destroy(new PeerError('aborted', 'aborted', { code: 'ABORT_ERR' }));
        } else if (!body.readableEnded && !body.destroyed) {
          if (drainable(init.method, body)) drain(req, body);
          else req.destroy(new PeerError('aborted', 'aborted', { code: 'ABORT_ERR' }));
        }
      };
      if (init.signal.aborted) onAbort();
      else init.signal.addEventListener('abort', onAbort, { once: true });
      req.once('close', () => init.signal.removeEventListener('abort', onAbort));
      req.once('response', (response: IncomingMessage) => {
        body = response;
        // Consumers attach their own listeners; this one only keeps an error on a body nobody
        // reads any more (a hedge that lost, a refused status) from crashing the process.
        response.on('error', ignore);
        resolve({
          status: response.statusCode ?? 0,
          header: (name) => firstValue(response.headers, name),
          body: response,
        });
      });
      // `on`, not `once`: aborting after the headers destroys the request with an error again.
      req.on('error', (error: NodeJS.ErrnoException) =>
        reject(new RequestFailure(failureOf(error), req.reusedSocket)),
      );
      req.end(init.body);
    });

  const request = async (target: string, init: PeerRequestInit): Promise<PeerResponse> => {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new PeerError('network', `invalid peer URL ${JSON.stringify(target)}`);
    }
    try {
      return await once(url, init);
    } catch (error) {
      // The peer may close a pooled connection just as we pick it: the request is sent once more
      // on a fresh one (what Node's documentation advises for reusedSocket). GET and HEAD are
      // safe to repeat, and so are the peer protocol's POSTs (advertise and withdraw are idempotent).
      const stale =
        error instanceof RequestFailure && error.reused && STALE_SOCKET_CODES.has(error.code ?? '');
      if (!stale || init.signal.aborted) throw plain(error);
      try {
        return await once(url, init);
      } catch (retried) {
        throw plain(retried);
      }
    }
  };

  return {
    request,

    async text(target, init, maxBytes) {
      const response = await request(target, init);
      const declared = Number(response.header('content-length') ?? 0);
      if (declared > maxBytes) {
        response.body.destroy();
        throw new PeerError('toolarge', `answer of ${declared} bytes exceeds ${maxBytes}`);
      }
      return await readText(response, maxBytes, init.signal);
    },

    close() {
      http.destroy();
      https.destroy();
    },
  };
}

/** Reads a whole answer of at most `max` bytes; a caller's abort rejects at once (the body drains or is cut). */
function readText(response: PeerResponse, max: number, signal: AbortSignal): Promise<PeerTextAnswer> {
  const body = response.body;
  return new Promise<PeerTextAnswer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error: PeerError | undefined): void => {
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve({ status: response.status, text: Buffer.concat(chunks, size).toString('utf8') });
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        body.destroy();
        settle(new PeerError('toolarge', `answer exceeds ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => settle(undefined);
    const onError = (error: NodeJS.ErrnoException): void => settle(failureOf(error));
    const onClose = (): void =>
      settle(new PeerError('network', 'connection closed before the end of the answer'));
    const onAbort = (): void => settle(new PeerError('aborted', 'aborted', { code: 'ABORT_ERR' }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    body.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/** A {@link RequestFailure} as the plain {@link PeerError} callers see. */
function plain(error: unknown): unknown {
  return error instanceof RequestFailure
    ? new PeerError(error.reason, error.message, { code: error.code })
    : error;
}

function drainable(method: string, body: IncomingMessage): boolean {
  if (method === 'HEAD' || body.statusCode === 204 || body.statusCode === 304) return true;
  const length = Number(body.headers['content-length']);
  return Number.isSafeInteger(length) && length <= DRAIN_LIMIT;
}

function ignore(): void {}

function firstValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
