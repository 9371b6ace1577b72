// The peer protocol's client: calls over the shared peer HTTP client (keep-alive connections
// reused per peer; mutual TLS for `https:` router URLs), a timeout on every call, typed failure
// reasons for metrics and cool-downs, and a hook to sign requests for the server's authenticator.
import {
  createPeerHttpClient,
  type PeerHttpClient,
  type PeerTlsClientOptions,
} from '../peer-transport/peer-http-client.js';
import { PeerError } from '../peer-transport/peer-error.js';
import { callSignal } from './abort.js';
import {
  PROTOCOL_PREFIX,
  callerQuery,
  parseBoot,
  parseLookupResponse,
  type AdvertiseRequest,
  type AdvertiseResponse,
  type LookupResponse,
  type PeerCaller,
  type WithdrawRequest,
  type WithdrawResponse,
} from './protocol.js';

/** Largest peer answer read (a lookup answer for 1000 keys with a few holders each fits). */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/**
 * The calls one node makes to another node's router (`routerUrl` is e.g. `http://10.0.0.7:5001`).
 * `caller` names the sender in the query (`from`, `boot`) so the peer can spot a restart.
 */
export interface PeerClient {
  advertise(
    routerUrl: string,
    request: AdvertiseRequest,
    signal?: AbortSignal,
    caller?: PeerCaller,
  ): Promise<AdvertiseResponse>;
  withdraw(
    routerUrl: string,
    request: WithdrawRequest,
    signal?: AbortSignal,
    caller?: PeerCaller,
  ): Promise<WithdrawResponse>;
  /** Holders of one key known to that node's index share. */
  lookup(routerUrl: string, key: string, signal?: AbortSignal, caller?: PeerCaller): Promise<LookupResponse>;
}

/** Signs an outgoing request: returns headers to add (e.g. an HMAC over method, path and body). */
export type PeerRequestSigner = (request: {
  method: string;
  url: string;
  body: string;
}) => Record<string, string>;

/** Options of `createHttpPeerClient`. */
export interface HttpPeerClientOptions {
  /** Timeout of a lookup call, in ms. @default 1000 */
  readonly lookupTimeoutMs?: number;
  /** Timeout of an advertise or withdraw call (a batch of up to 1000 keys), in ms. @default 3000 */
  readonly writeTimeoutMs?: number;
  readonly sign?: PeerRequestSigner;
  /** Mutual TLS for `https:` router URLs (CA, our certificate, the peers' name). */
  readonly tls?: PeerTlsClientOptions;
  /** The connections to peers, shared with the content fetches. @default a new client with `tls` */
  readonly http?: PeerHttpClient;
}

/** Creates the HTTP peer client. */
export function createHttpPeerClient(options: HttpPeerClientOptions = {}): PeerClient {
  const lookupTimeout = options.lookupTimeoutMs ?? 1000;
  const writeTimeout = options.writeTimeoutMs ?? 3000;
  const http = options.http ?? createPeerHttpClient({ tls: options.tls });

  async function call(
    method: 'GET' | 'POST',
    routerUrl: string,
    path: string,
    body: unknown,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const call = callSignal([signal], timeoutMs);
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.sign) Object.assign(headers, options.sign({ method, url: path, body: text }));
    let status: number;
    let payload: string;
    try {
      const answer = await http.text(
        routerUrl + path,
        { method, headers, body: body === undefined ? undefined : text, signal: call.signal },
        MAX_ANSWER_BYTES,
      );
      status = answer.status;
      payload = answer.text;
    } catch (error) {
      if (call.timedOut()) {
        throw new PeerError('timeout', `${method} ${path}: no answer within ${timeoutMs} ms`);
      }
      if (signal?.aborted) throw new PeerError('aborted', `${method} ${path}: aborted by the caller`);
      const failure = error instanceof PeerError ? error : new PeerError('network', String(error));
      // An oversized answer breaks the protocol's contract (the reason the router counted before).
      if (failure.reason === 'toolarge')
        throw new PeerError('protocol', `${method} ${path}: ${failure.message}`);
      if (failure.reason === 'refused')
        throw new PeerError('refused', `${method} ${path}: connection refused`, { code: failure.code });
      throw new PeerError('network', `${method} ${path}: ${failure.code ?? failure.message}`, {
        code: failure.code,
      });
    } finally {
      call.dispose();
    }
    if (status < 200 || status > 299) {
      let detail = payload.slice(0, 200);
      try {
        detail = (JSON.parse(payload) as { error?: string }).error ?? detail;
      } catch {
        // not JSON: keep the text
      }
      throw new PeerError('status', `${method} ${path}: ${status} ${detail}`, { status });
    }
    try {
      return JSON.parse(payload) as unknown;
    } catch {
      throw new PeerError('protocol', `${method} ${path}: answer is not JSON`);
    }
  }

  const named = (path: string, caller: PeerCaller | undefined): string =>
    caller ? `${path}${path.includes('?') ? '&' : '?'}${callerQuery(caller)}` : path;
  const withBoot = <T extends object>(answer: T, body: unknown): T & { boot?: string } => {
    const boot = parseBoot(body);
    return boot === undefined ? answer : { ...answer, boot };
  };

  return {
    async advertise(routerUrl, request, signal, caller) {
      const body = await call(
        'POST',
        routerUrl,
        named(`${PROTOCOL_PREFIX}/advertise`, caller),
        request,
        writeTimeout,
        signal,
      );
      return withBoot({ accepted: Number((body as { accepted?: unknown }).accepted ?? 0) }, body);
    },
    async withdraw(routerUrl, request, signal, caller) {
      const body = await call(
        'POST',
        routerUrl,
        named(`${PROTOCOL_PREFIX}/withdraw`, caller),
        request,
        writeTimeout,
        signal,
      );
      return withBoot({ removed: Number((body as { removed?: unknown }).removed ?? 0) }, body);
    },
    async lookup(routerUrl, key, signal, caller) {
      const path = named(`${PROTOCOL_PREFIX}/lookup?key=${encodeURIComponent(key)}`, caller);
      const body = await call('GET', routerUrl, path, undefined, lookupTimeout, signal);
      try {
        return parseLookupResponse(body);
      } catch (error) {
        throw new PeerError('protocol', `GET ${path}: ${(error as Error).message}`);
      }
    },
  };
}
