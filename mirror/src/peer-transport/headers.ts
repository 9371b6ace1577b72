// The headers one daemon sets on requests to another, named once for senders and receivers.

/**
 * The loop guard, `x-peili-mirrored: true`, on every registry request one node sends to another:
 * such a request is served from local content only, 404 otherwise. Lower case, as node hands
 * incoming header names over.
 */
export const MIRRORED_HEADER = 'x-peili-mirrored';

/** The peer signature, `v1 t=<unix ms> s=<hex hmac>`, when peers share a secret (`peer-auth/`). */
export const PEER_AUTH_HEADER = 'x-peili-auth';
