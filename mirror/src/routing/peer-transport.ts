// The peer protocol's HTTP transport: node:http and node:https with keep-alive agents (connections
// reused per peer), and the TLS options of mutual TLS between peers for `https:` router URLs.
import http from 'node:http';
import https from 'node:https';

/** TLS options of a connection to a peer router (a subset of `tls.ConnectionOptions`). */
export interface PeerTransportTls {
  readonly ca: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Name sent as SNI and checked against the peer's certificate instead of its address. */
  readonly servername?: string;
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** One answer, read whole. */
export interface PeerTransportAnswer {
  readonly status: number;
  readonly text: string;
}

/** A failed exchange; `code` is Node's error code (`ECONNREFUSED`, `ERR_TLS_CERT_ALTNAME_INVALID`, …). */
export class PeerTransportError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly tooLarge = false,
  ) {
    super(message);
    this.name = 'PeerTransportError';
  }
}

/** Sends one request to a peer router and reads its answer. */
export interface PeerTransport {
  send(
    method: 'GET' | 'POST',
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal,
  ): Promise<PeerTransportAnswer>;
}

/** Options of {@link createPeerTransport}. */
export interface PeerTransportOptions {
  /** TLS for `https:` URLs; without it an `https:` URL fails. */
  readonly tls?: PeerTransportTls;
  /** Largest answer read, in bytes; larger answers fail with `tooLarge`. */
  readonly maxAnswerBytes: number;
  /** Idle keep-alive sockets are closed after this many ms (below the server's 65 s). @default 30000 */
  readonly idleSocketMs?: number;
}

/** Creates the transport with its own agents (one per scheme). */
export function createPeerTransport(options: PeerTransportOptions): PeerTransport {
  const idle = options.idleSocketMs ?? 30_000;
  const plain = new http.Agent({ keepAlive: true, timeout: idle });
  const secure = options.tls
    ? new https.Agent({ keepAlive: true, timeout: idle, ...options.tls })
    : undefined;
  const max = options.maxAnswerBytes;

  return {
    send(method, url, headers, body, signal) {
      const isHttps = url.startsWith('https:');
      if (isHttps && !secure) {
        return Promise.reject(
          new PeerTransportError(`${url}: https peer URL but no peer TLS configured`, 'NO_TLS'),
        );
      }
      const all =
        body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
      return new Promise((resolve, reject) => {
        const fail = (error: Error & { code?: string }): void =>
          reject(
            error instanceof PeerTransportError ? error : new PeerTransportError(error.message, error.code),
          );
        const request = (isHttps ? https : http).request(
          url,
          { method, headers: all, agent: isHttps ? secure : plain, signal },
          (response) => {
            const declared = Number(response.headers['content-length'] ?? 0);
            if (declared > max) {
              response.destroy();
              fail(new PeerTransportError(`answer of ${declared} bytes exceeds ${max}`, undefined, true));
              return;
            }
            const chunks: Buffer[] = [];
            let size = 0;
            response.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > max) {
                response.destroy();
                fail(new PeerTransportError(`answer exceeds ${max} bytes`, undefined, true));
                return;
              }
              chunks.push(chunk);
            });
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
            );
            response.on('error', fail);
          },
        );
        request.on('error', fail);
        request.end(body);
      });
    },
  };
}
