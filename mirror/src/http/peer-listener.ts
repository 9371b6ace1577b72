// The mutual-TLS peer listener: one HTTPS port (the router port) for everything one daemon asks
// another, the peer protocol (`/peili/v1/…`) and content (`/v2/…`, loop-guarded registry routes).
// Both are the ordinary fastify apps; this server only terminates TLS, refuses clients whose
// certificate lacks the cluster's peer name, and hands each request to the app owning its path.
import { createServer, type Server } from 'node:https';
import type { TLSSocket, TlsOptions } from 'node:tls';
import type { FastifyInstance } from 'fastify';

/** Options of {@link createPeerListener}. */
export interface PeerListenerOptions {
  /** TLS options: our certificate, the CA, `requestCert` and `rejectUnauthorized` set. */
  readonly tls: Readonly<TlsOptions>;
  /** Checks an accepted client (already verified against the CA): undefined accepts, a reason refuses. */
  readonly checkPeer?: (socket: TLSSocket) => string | undefined;
  /** Told about every refused connection: failed handshakes and certificates `checkPeer` refused. */
  readonly onRefused?: (reason: string, remoteAddress: string | undefined) => void;
  /** Time in ms a client has to send a request head. @default 10000 */
  readonly requestTimeout?: number;
  /** Socket inactivity timeout in ms. @default 60000 */
  readonly connectionTimeout?: number;
  /** Idle keep-alive connections are closed after this many ms. @default 65000 */
  readonly keepAliveTimeout?: number;
  /** Largest request head in bytes. @default 16384 */
  readonly maxHeaderSize?: number;
}

/** The apps served: content under `/v2/`, everything else by the peer protocol app. */
export interface PeerListenerApps {
  /** `buildApp(…, { peerRequests: 'only' })`: loop-guarded registry routes. */
  readonly registry: FastifyInstance;
  /** `buildPeerApp(…)`: `/peili/v1/…`. */
  readonly router: FastifyInstance;
}

/** A listener serving both apps over mutual TLS. */
export interface PeerListener {
  readonly server: Server;
  listen(host: string, port: number): Promise<void>;
  /** Stops accepting, closes both apps, cuts connections still open after `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

function isContentPath(url: string | undefined): boolean {
  return url === '/v2' || url?.startsWith('/v2/') === true || url?.startsWith('/v2?') === true;
}

/** Creates the listener (not listening yet). */
export function createPeerListener(apps: PeerListenerApps, options: PeerListenerOptions): PeerListener {
  const requestTimeout = options.requestTimeout ?? 10_000;
  const server = createServer({
    ...options.tls,
    maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
    requestTimeout,
    headersTimeout: requestTimeout,
    keepAliveTimeout: options.keepAliveTimeout ?? 65_000,
    connectionsCheckingInterval: Math.min(1_000, requestTimeout),
  });
  server.setTimeout(options.connectionTimeout ?? 60_000);
  server.on('request', (request, response) =>
    (isContentPath(request.url) ? apps.registry : apps.router).routing(request, response),
  );
  // Runs after the HTTP layer attached itself, before a byte of the request is read.
  server.on('secureConnection', (socket: TLSSocket) => {
    const refusal = options.checkPeer?.(socket);
    if (refusal === undefined) return;
    options.onRefused?.(refusal, socket.remoteAddress);
    socket.destroy();
  });
  server.on('tlsClientError', (error: Error & { code?: string }, socket) => {
    options.onRefused?.(`TLS handshake failed: ${error.code ?? error.message}`, socket.remoteAddress);
  });

  return {
    server,
    async listen(host, port) {
      await Promise.all([apps.registry.ready(), apps.router.ready()]);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
    async close(timeoutMs) {
      const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
      timer.unref();
      try {
        // The apps first: their return503OnClosing answers requests arriving meanwhile.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await Promise.all([apps.registry.close(), apps.router.close()]);
        await closed;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
