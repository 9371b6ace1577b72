/**
 * Domain errors of the registry API, declared once. Each carries its OCI error code and the HTTP
 * status the edge answers with; the edge's single error handler turns them into the
 * `{"errors":[{code,message,detail}]}` body of the distribution spec.
 */

/** Every error code the mirror can answer with, and its default HTTP status and message. */
export const OCI_ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  TAG_INVALID: { status: 400, message: 'invalid tag' },
  DIGEST_INVALID: { status: 400, message: 'invalid digest' },
  // 405 when the HTTP method is not supported (see `unsupportedMethod`); 400 for other operations.
  UNSUPPORTED: { status: 400, message: 'the operation is unsupported' },
  // Not an OCI code: the spec has none for a bad Range, so the mirror names the HTTP condition.
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'requested range not satisfiable' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
} as const satisfies Record<string, { status: number; message: string }>;

/** An error code the mirror answers with. */
export type OciErrorCode = keyof typeof OCI_ERROR_CODES;

/** Optional parts of an OciError beyond its code. */
export interface OciErrorOptions {
  /** Human-readable message; the code's default when omitted. */
  readonly message?: string;
  /** JSON-serialisable detail for the client (the spec's unstructured `detail`). */
  readonly detail?: unknown;
  /** HTTP status overriding the code's default (only UNSUPPORTED uses 405 for methods). */
  readonly status?: number;
  /** Response headers the error needs (e.g. `Content-Range: bytes *\/size` on 416, `Allow` on 405). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

/** A registry API failure with its OCI code and HTTP status; thrown by the core, mapped at the edge. */
export class OciError extends Error {
  override readonly name = 'OciError';
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: OciErrorCode, options: OciErrorOptions = {}) {
    super(
      options.message ?? OCI_ERROR_CODES[code].message,
      options.cause === undefined ? {} : { cause: options.cause },
    );
    this.code = code;
    this.status = options.status ?? OCI_ERROR_CODES[code].status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  /** The error entry of the spec's JSON body (`detail` only when set). */
  toJSON(): { code: OciErrorCode; message: string; detail?: unknown } {
    return this.detail === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, detail: this.detail };
  }
}

/** True when `value` is an OciError. */
export function isOciError(value: unknown): value is OciError {
  return value instanceof OciError;
}

/** UNSUPPORTED answered with 405 and an `Allow` header, for HTTP methods the mirror does not serve. */
export function unsupportedMethod(method: string, allow: readonly string[] = ['GET', 'HEAD']): OciError {
  return new OciError('UNSUPPORTED', {
    status: 405,
    message: `method ${method} is not supported by this mirror`,
    headers: { allow: allow.join(', ') },
  });
}

/** RANGE_NOT_SATISFIABLE (416) with the `Content-Range: bytes *\/<size>` header RFC 9110 asks for. */
export function rangeNotSatisfiable(size: number, range: string): OciError {
  return new OciError('RANGE_NOT_SATISFIABLE', {
    message: `range ${JSON.stringify(range)} is not satisfiable for a blob of ${size} bytes`,
    headers: { 'content-range': `bytes */${size}` },
  });
}
