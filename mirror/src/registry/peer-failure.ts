// The mirror path's view of a failed peer call: the one PeerError, always naming the peer at
// fault, so the caller can count it, cool the peer down and move on to the next holder.
import { PeerError, type PeerFailureReason } from '../peer-transport/peer-error.js';

/** A {@link PeerError} that names the peer at fault. */
export type PeerFailure = PeerError & { readonly peerId: string };

/** A failure of `peerId` with `reason`. */
export function peerFailure(peerId: string, reason: PeerFailureReason, message: string): PeerFailure {
  return new PeerError(reason, message, { peerId }) as PeerFailure;
}

/** A failure raised about a peer (not a caller's abort or our own deadline). */
export function isPeerFailure(error: unknown): error is PeerFailure {
  return error instanceof PeerError && error.peerId !== undefined;
}
