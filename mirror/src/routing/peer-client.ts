// The peer protocol's client: Node's built-in fetch (undici underneath, which keeps connections
// alive and reuses them per origin), a timeout on every call, typed failure reasons for metrics
// and cool-downs, and a hook to sign requests for the server's authenticator.
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

/** Why a peer call failed: the `reason` label of `peer_errors_total`. */
export type PeerFailureReason = 'timeout' | 'refused' | 'status' | 'protocol' | 'network' | 'aborted';

/** A failed peer call. `aborted` means the caller gave up: not the peer's fault. */
export class PeerCallError extends Error {
  constructor(
    readonly reason: PeerFailureReason,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PeerCallError';
  }
}

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
}

/** Creates the HTTP peer client. */
export function createHttpPeerClient(options: HttpPeerClientOptions = {}): PeerClient {
  const lookupTimeout = options.lookupTimeoutMs ?? 1000;
  const writeTimeout = options.writeTimeoutMs ?? 3000;

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
    let response: Response;
    let payload: string;
    try {
      response = await fetch(routerUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : text,
        signal: call.signal,
      });
      const length = Number(response.headers.get('content-length') ?? 0);
      if (length > MAX_ANSWER_BYTES) {
        await response.body?.cancel();
        throw new PeerCallError(
          'protocol',
          `${method} ${path}: answer of ${length} bytes exceeds ${MAX_ANSWER_BYTES}`,
        );
      }
      payload = await response.text();
    } catch (error) {
      if (error instanceof PeerCallError) throw error;
      if (call.timedOut()) {
        throw new PeerCallError('timeout', `${method} ${path}: no answer within ${timeoutMs} ms`);
      }
      if (signal?.aborted) throw new PeerCallError('aborted', `${method} ${path}: aborted by the caller`);
      const code = (error as { cause?: { code?: string } }).cause?.code;
      if (code === 'ECONNREFUSED')
        throw new PeerCallError('refused', `${method} ${path}: connection refused`);
      throw new PeerCallError('network', `${method} ${path}: ${code ?? (error as Error).message}`);
    } finally {
      call.dispose();
    }
    if (!response.ok) {
      let detail = payload.slice(0, 200);
      try {
        detail = (JSON.parse(payload) as { error?: string }).error ?? detail;
      } catch {
        // not JSON: keep the text
      }
      throw new PeerCallError('status', `${method} ${path}: ${response.status} ${detail}`, response.status);
    }
    try {
      return JSON.parse(payload) as unknown;
    } catch {
      throw new PeerCallError('protocol', `${method} ${path}: answer is not JSON`);
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
        throw new PeerCallError('protocol', `GET ${path}: ${(error as Error).message}`);
      }
    },
  };
}
