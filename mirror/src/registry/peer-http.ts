// The mirror path's HTTP client for peers: node:http(s) with keep-alive agents rather than the
// global fetch. Relaying a blob through fetch's web streams cost about 40 % of the relay's
// throughput (BENCHMARKS.md, peer hop); an IncomingMessage hands over the socket's Buffers as they
// are, with Node stream backpressure (pause/resume) instead of a promise per chunk.
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ConnectionOptions } from 'node:tls';

/** TLS settings for `https:` peer URLs: the cluster CA, this daemon's client identity, the peers' name. */
export type PeerTlsClientOptions = Pick<
  ConnectionOptions,
  'ca' | 'cert' | 'key' | 'servername' | 'checkServerIdentity'
>;

/** A response whose headers arrived; `body` is not read yet (destroy it, or read it to the end). */
export interface PeerResponse {
  readonly status: number;
  /** The first value of a header (lower-case name), or undefined. */
  header(name: string): string | undefined;
  readonly body: IncomingMessage;
}

export interface PeerRequestInit {
  readonly method: 'GET' | 'HEAD';
  readonly headers: Record<string, string>;
  /**
   * Aborting it fails a pending request and cuts a body being read; a body that is over or
   * small is drained instead, to keep the connection.
   */
  readonly signal: AbortSignal;
}

export interface PeerHttpClient {
  /** Resolves with the response once its headers arrived; rejects with a {@link PeerHttpError}. */
  request(url: string, init: PeerRequestInit): Promise<PeerResponse>;
  /** Closes the idle pooled connections. */
  close(): void;
}

/** A request that failed before its headers arrived; `code` is the system error code when there is one. */
export class PeerHttpError extends Error {
  override readonly name = 'PeerHttpError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface PeerHttpClientOptions {
  readonly tls?: PeerTlsClientOptions;
  /** How long an idle pooled connection is kept, in ms (well below the peers' keep-alive timeout). */
  readonly idleSocketTimeout?: number;
}

/** Error codes of a kept-alive connection the peer closed while it sat in our pool. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

export function createPeerHttpClient(options: PeerHttpClientOptions = {}): PeerHttpClient {
  const idle = options.idleSocketTimeout ?? 30_000;
  // LIFO reuses the warmest connection and lets the others time out when traffic drops.
  const http = new HttpAgent({ keepAlive: true, timeout: idle, scheduling: 'lifo' });
  const https = new HttpsAgent({ keepAlive: true, timeout: idle, scheduling: 'lifo', ...options.tls });

  const once = (url: URL, init: PeerRequestInit): Promise<PeerResponse & { reused: boolean }> =>
    new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') {
        reject(new PeerHttpError(`unsupported peer URL scheme ${url.protocol}`, undefined));
        return;
      }
      if (secure && options.tls === undefined) {
        reject(new PeerHttpError('https peer URL but no peer TLS configured', undefined));
        return;
      }
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method: init.method,
        headers: init.headers,
        agent: secure ? https : http,
      });
      let body: IncomingMessage | undefined;
      // Aborting must not cost the connection when the answer is over or nearly so (a HEAD, a
      // 404, a fully read manifest): those are drained so the socket goes back to the pool.
      // Anything else still arriving (a hedge that lost a blob race) is cut.
      const onAbort = (): void => {
        if (body === undefined) {
          req.destroy(new PeerHttpError('aborted', 'ABORT_ERR'));
        } else if (!body.readableEnded && !body.destroyed) {
          if (drainable(init.method, body)) drain(req, body);
          else req.destroy(new PeerHttpError('aborted', 'ABORT_ERR'));
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
          reused: req.reusedSocket,
        });
      });
      // `on`, not `once`: aborting after the headers destroys the request with an error again.
      req.on('error', (error: NodeJS.ErrnoException) => {
        const wrapped = new PeerHttpError(error.message, error.code);
        (wrapped as { reused?: boolean }).reused = req.reusedSocket;
        reject(wrapped);
      });
      req.end();
    });

  return {
    async request(target, init) {
      const url = new URL(target);
      try {
        return await once(url, init);
      } catch (error) {
        // The peer may close a pooled connection just as we pick it: GET and HEAD are safe to
        // send once more on a fresh one (what Node's documentation advises for reusedSocket).
        const stale =
          error instanceof PeerHttpError &&
          (error as { reused?: boolean }).reused === true &&
          STALE_SOCKET_CODES.has(error.code ?? '');
        if (!stale || init.signal.aborted) throw error;
        return await once(url, init);
      }
    },
    close() {
      http.destroy();
      https.destroy();
    },
  };
}

/** Bodies at most this large are read to their end when aborted, to keep their connection. */
const DRAIN_LIMIT = 64 * 1024;
/** How long an aborted body may take to drain before its connection is cut after all. */
const DRAIN_TIMEOUT = 1_000;

function drainable(method: string, body: IncomingMessage): boolean {
  if (method === 'HEAD' || body.statusCode === 204 || body.statusCode === 304) return true;
  const length = Number(body.headers['content-length']);
  return Number.isSafeInteger(length) && length <= DRAIN_LIMIT;
}

function drain(req: ClientRequest, body: IncomingMessage): void {
  const guard = setTimeout(() => req.destroy(), DRAIN_TIMEOUT);
  guard.unref();
  body.once('close', () => clearTimeout(guard));
  body.resume();
}

function ignore(): void {}

function firstValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
