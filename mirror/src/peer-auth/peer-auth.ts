// Peer authentication with a cluster-wide shared secret: every request one daemon sends another
// (peer protocol and loop-guarded registry fetches) carries an HMAC over what it asks, so a pod
// that is not a Peili daemon can neither poison the index nor read through the loop guard.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { PEER_AUTH_HEADER } from '../peer-transport/headers.js';

/** Shortest secret accepted, in bytes: an HMAC key shorter than this is guessable. */
export const MIN_SECRET_BYTES = 16;

/** What is signed of a request. `url` is the path and query exactly as sent. */
export interface SignedRequest {
  readonly method: string;
  readonly url: string;
  readonly body: string | Buffer;
}

/** A request as the receiving side sees it. */
export interface VerifiableRequest extends SignedRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Signs outgoing and verifies incoming peer requests. */
export interface PeerAuth {
  /** Headers to add to an outgoing request. */
  sign(request: SignedRequest): Record<string, string>;
  /** True when the request carries a valid, fresh signature. */
  verify(request: VerifiableRequest): boolean;
}

/** Options of {@link createPeerAuth}. */
export interface PeerAuthOptions {
  /** Name of the setting the secret came from, for error messages. @default 'secret' */
  readonly field?: string;
  /** Largest clock difference (and replay window) accepted, in ms. @default 60000 */
  readonly maxSkewMs?: number;
  /** Clock in ms. @default Date.now */
  readonly now?: () => number;
}

function canonical(request: SignedRequest, timestamp: string): string {
  const bodyHash = createHash('sha256').update(request.body).digest('hex');
  return `${request.method.toUpperCase()}\n${request.url}\n${timestamp}\n${bodyHash}`;
}

/** Creates the signer/verifier for `secret`; throws a RangeError naming `field` when it is too short. */
export function createPeerAuth(secret: string, options: PeerAuthOptions = {}): PeerAuth {
  const field = options.field ?? 'secret';
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new RangeError(`${field}: the peer secret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  const maxSkew = options.maxSkewMs ?? 60_000;
  const now = options.now ?? Date.now;
  const mac = (text: string): Buffer => createHmac('sha256', secret).update(text).digest();

  return {
    sign(request) {
      const timestamp = String(now());
      return {
        [PEER_AUTH_HEADER]: `v1 t=${timestamp} s=${mac(canonical(request, timestamp)).toString('hex')}`,
      };
    },
    verify(request) {
      const raw = request.headers[PEER_AUTH_HEADER];
      const value = Array.isArray(raw) ? raw[0] : raw;
      const match = value === undefined ? null : /^v1 t=(\d{1,16}) s=([0-9a-f]{64})$/.exec(value);
      if (!match) return false;
      const [, timestamp, signature] = match as unknown as [string, string, string];
      if (Math.abs(now() - Number(timestamp)) > maxSkew) return false;
      const expected = mac(canonical(request, timestamp));
      return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
    },
  };
}
