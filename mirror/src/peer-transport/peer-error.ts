// The one error of a call to a peer, for the peer protocol and content fetches alike: its
// `reason` is the `reason` label of `peili_peer_errors_total` and decides whether the peer is
// put in cool-down.

/** Why a call to a peer failed: the `reason` label of `peer_errors_total`. */
export type PeerFailureReason =
  /** No answer (headers, or the next body bytes) within the call's budget. */
  | 'timeout'
  /** The connection was refused: nothing listens there (a crashed or stopped daemon). */
  | 'refused'
  /** Any other connection or TLS failure before an answer. */
  | 'network'
  /** The peer answered 404: it does not hold the content (not its fault). */
  | 'notfound'
  /** An unexpected status, or an answer without a length. */
  | 'status'
  /** Bytes that do not match their digest, or a tag answer without a valid digest. */
  | 'digest'
  /** A manifest without a recognisable media type. */
  | 'invalid'
  /** A body larger than the limit for it. */
  | 'toolarge'
  /** A 416, or a Content-Range that does not cover what was asked. */
  | 'range'
  /** The body ended or broke before its last byte. */
  | 'broken'
  /** The body stopped flowing for longer than the idle timeout. */
  | 'stall'
  /** A peer-protocol answer that is not what the protocol says (not JSON, wrong shape, too large). */
  | 'protocol'
  /** The caller gave up: not the peer's fault, never counted. */
  | 'aborted';

/** Details of a {@link PeerError}. */
export interface PeerErrorDetails {
  /** Member id of the peer at fault, when the caller knows it. */
  readonly peerId?: string;
  /** Node's system error code (`ECONNREFUSED`, `ERR_TLS_CERT_ALTNAME_INVALID`, …). */
  readonly code?: string;
  /** HTTP status of an unexpected answer. */
  readonly status?: number;
}

/** A failed call to a peer. */
export class PeerError extends Error {
  override readonly name = 'PeerError';
  readonly peerId: string | undefined;
  readonly code: string | undefined;
  readonly status: number | undefined;

  constructor(
    readonly reason: PeerFailureReason,
    message: string,
    details: PeerErrorDetails = {},
  ) {
    super(message);
    this.peerId = details.peerId;
    this.code = details.code;
    this.status = details.status;
  }
}

/** Reasons that put a peer in cool-down: it misbehaved or is down, it did not merely lack the content. */
export const COOL_DOWN_REASONS: ReadonlySet<PeerFailureReason> = new Set<PeerFailureReason>([
  'timeout',
  'refused',
  'network',
  'status',
  'digest',
  'broken',
  'stall',
  'protocol',
]);
