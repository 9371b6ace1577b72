// The peer protocol's messages and their validation, free of any HTTP framework so that the
// server, the client and in-process tests share one definition.
//
//   POST /peili/v1/advertise  {holder:{id,registryUrl}, ttlSeconds, keys:[…]} → {accepted}
//   POST /peili/v1/withdraw   {holder:{id,registryUrl}, keys:[…]}             → {removed}
//   POST /peili/v1/lookup     {keys:[…]}                                      → {holders:{key:[…]}}
//   GET  /peili/v1/lookup?key=<key>                                           → {holders:{key:[…]}}
//
// Every answer also names the answering node's boot id (`boot`), and every request may name its
// sender in the query (`?from=<member id>&boot=<boot id>`): a new boot id means a restarted
// member with an empty index share. Both are optional, so older nodes interoperate.
import { keyKind } from './keys.js';
import type { PeerLocation } from './router.js';

/** Path prefix of every peer-protocol route; the version changes when messages change incompatibly. */
export const PROTOCOL_PREFIX = '/peili/v1';
/** Most keys in one advertise, withdraw or lookup batch. */
export const MAX_KEYS_PER_BATCH = 1000;
/** Largest request body accepted, in bytes (1000 tag keys of ~500 characters fit). */
export const MAX_BODY_BYTES = 512 * 1024;
/** Longest advertisement accepted, in seconds. */
export const MAX_TTL_SECONDS = 86_400;
/** Longest holder id or registry URL accepted. */
export const MAX_HOLDER_FIELD_LENGTH = 300;

/** Boot ids: random per index share (a new one at every process start), URL-safe. */
export const BOOT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The sender of a request as it names itself in the query: its member id and boot id. */
export interface PeerCaller {
  readonly id: string;
  readonly boot: string;
}

/** Body of `POST /peili/v1/advertise`. */
export interface AdvertiseRequest {
  readonly holder: PeerLocation;
  readonly ttlSeconds: number;
  readonly keys: readonly string[];
}

/** Body of `POST /peili/v1/withdraw`. */
export interface WithdrawRequest {
  readonly holder: PeerLocation;
  readonly keys: readonly string[];
}

/** Body of `POST /peili/v1/lookup`. */
export interface LookupRequest {
  readonly keys: readonly string[];
}

/** Answer to advertise. */
export interface AdvertiseResponse {
  readonly accepted: number;
  /** The answering node's boot id (absent from nodes older than boot ids). */
  readonly boot?: string;
}

/** Answer to withdraw. */
export interface WithdrawResponse {
  readonly removed: number;
  /** The answering node's boot id (absent from nodes older than boot ids). */
  readonly boot?: string;
}

/** One holder in a lookup answer; `ttlSeconds` is what is left of its advertisement. */
export interface LookupHolder extends PeerLocation {
  readonly ttlSeconds: number;
}

/** Answer to lookup: holders by key (a key nobody holds maps to an empty list). */
export interface LookupResponse {
  readonly holders: Readonly<Record<string, readonly LookupHolder[]>>;
  /** The answering node's boot id (absent from nodes older than boot ids). */
  readonly boot?: string;
}

/** Body of every 4xx/5xx answer. */
export interface ErrorResponse {
  readonly error: string;
}

/** A request that failed validation: the HTTP status to answer and the exact message. */
export class ProtocolError extends Error {
  constructor(
    readonly statusCode: 400 | 401 | 404 | 413 | 415,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates a `keys` array: a non-empty array of at most MAX_KEYS_PER_BATCH valid keys. */
export function parseKeys(value: unknown): string[] {
  if (!Array.isArray(value)) throw new ProtocolError(400, 'keys must be an array of strings');
  if (value.length === 0) throw new ProtocolError(400, 'keys must not be empty');
  if (value.length > MAX_KEYS_PER_BATCH) {
    throw new ProtocolError(413, `too many keys: ${value.length} > ${MAX_KEYS_PER_BATCH}`);
  }
  value.forEach((key: unknown, i) => {
    if (typeof key !== 'string') throw new ProtocolError(400, `keys[${i}] must be a string`);
    if (keyKind(key) === undefined) {
      throw new ProtocolError(
        400,
        `keys[${i}] is not a digest or tag reference: ${JSON.stringify(key.slice(0, 100))}`,
      );
    }
  });
  return value as string[];
}

/** Validates a holder: a non-empty `id` and an http(s) `registryUrl` without a trailing slash. */
export function parseHolder(value: unknown): PeerLocation {
  if (!isObject(value)) throw new ProtocolError(400, 'holder must be an object');
  const { id, registryUrl } = value;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_HOLDER_FIELD_LENGTH) {
    throw new ProtocolError(400, `holder.id must be a string of 1 to ${MAX_HOLDER_FIELD_LENGTH} characters`);
  }
  if (
    typeof registryUrl !== 'string' ||
    registryUrl.length > MAX_HOLDER_FIELD_LENGTH ||
    !/^https?:\/\/[^/\s]+(?:\/[^\s]*[^/\s])?$/.test(registryUrl)
  ) {
    throw new ProtocolError(400, 'holder.registryUrl must be an http(s) URL without a trailing slash');
  }
  return { id, registryUrl };
}

function parseBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(body)) throw new ProtocolError(400, 'body must be a JSON object');
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) throw new ProtocolError(400, `unknown field ${JSON.stringify(field)}`);
  }
  return body;
}

/** Validates the body of an advertise request. */
export function parseAdvertiseRequest(body: unknown): AdvertiseRequest {
  const fields = parseBody(body, ['holder', 'ttlSeconds', 'keys']);
  const holder = parseHolder(fields.holder);
  const ttl = fields.ttlSeconds;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) {
    throw new ProtocolError(400, `ttlSeconds must be an integer from 1 to ${MAX_TTL_SECONDS}`);
  }
  return { holder, ttlSeconds: ttl, keys: parseKeys(fields.keys) };
}

/** Validates the body of a withdraw request. */
export function parseWithdrawRequest(body: unknown): WithdrawRequest {
  const fields = parseBody(body, ['holder', 'keys']);
  return { holder: parseHolder(fields.holder), keys: parseKeys(fields.keys) };
}

/** Validates the body of a lookup request. */
export function parseLookupRequest(body: unknown): LookupRequest {
  const fields = parseBody(body, ['keys']);
  return { keys: parseKeys(fields.keys) };
}

/**
 * The sender named in a request's query (`from` and `boot`), or undefined when it names none
 * (older nodes, tools). Both or neither: a half or malformed naming is a 400.
 */
export function parseCaller(query: unknown): PeerCaller | undefined {
  const { from, boot } = isObject(query) ? query : {};
  if (from === undefined && boot === undefined) return undefined;
  if (typeof boot !== 'string' || !BOOT_ID_PATTERN.test(boot)) {
    throw new ProtocolError(400, 'query parameter boot must be 1 to 64 characters of [A-Za-z0-9_-]');
  }
  if (typeof from !== 'string' || from.length === 0 || from.length > MAX_HOLDER_FIELD_LENGTH) {
    throw new ProtocolError(
      400,
      `query parameter from must be a string of 1 to ${MAX_HOLDER_FIELD_LENGTH} characters`,
    );
  }
  return { id: from, boot };
}

/** The query that names `caller` (without the leading `?` or `&`). */
export function callerQuery(caller: PeerCaller): string {
  return `from=${encodeURIComponent(caller.id)}&boot=${encodeURIComponent(caller.boot)}`;
}

/** The boot id in a peer's answer, when it sends a valid one. */
export function parseBoot(body: unknown): string | undefined {
  const boot = isObject(body) ? body.boot : undefined;
  return typeof boot === 'string' && BOOT_ID_PATTERN.test(boot) ? boot : undefined;
}

/** Validates a lookup answer from a peer (the client trusts nothing it receives). */
export function parseLookupResponse(body: unknown): LookupResponse {
  if (!isObject(body) || !isObject(body.holders)) throw new Error('lookup answer has no holders object');
  const holders: Record<string, LookupHolder[]> = {};
  for (const [key, list] of Object.entries(body.holders)) {
    if (!Array.isArray(list)) throw new Error(`lookup answer for ${JSON.stringify(key)} is not an array`);
    holders[key] = list.map((item: unknown) => {
      const holder = parseHolder(item);
      const ttl = isObject(item) ? item.ttlSeconds : undefined;
      return { ...holder, ttlSeconds: typeof ttl === 'number' ? ttl : 0 };
    });
  }
  const boot = parseBoot(body);
  return boot === undefined ? { holders } : { holders, boot };
}
