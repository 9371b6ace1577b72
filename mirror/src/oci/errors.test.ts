import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  OCI_ERROR_CODES,
  OciError,
  isOciError,
  rangeNotSatisfiable,
  unsupportedMethod,
  type OciErrorCode,
} from './errors.js';

describe('OciError', () => {
  const statuses: Array<[OciErrorCode, number]> = [
    ['BLOB_UNKNOWN', 404],
    ['MANIFEST_UNKNOWN', 404],
    ['NAME_UNKNOWN', 404],
    ['NAME_INVALID', 400],
    ['TAG_INVALID', 400],
    ['DIGEST_INVALID', 400],
    ['UNSUPPORTED', 400],
    ['RANGE_NOT_SATISFIABLE', 416],
    ['UNAUTHORIZED', 401],
    ['DENIED', 403],
    ['TOOMANYREQUESTS', 429],
    ['UNAVAILABLE', 503],
  ];
  it('declares exactly these codes', () => {
    assert.deepEqual(Object.keys(OCI_ERROR_CODES).sort(), statuses.map(([code]) => code).sort());
  });
  for (const [code, status] of statuses) {
    it(`${code} → ${status}`, () => {
      const error = new OciError(code);
      assert.equal(error.status, status);
      assert.equal(error.code, code);
      assert.equal(error.message, OCI_ERROR_CODES[code].message);
      assert.deepEqual(error.toJSON(), { code, message: OCI_ERROR_CODES[code].message });
      assert.deepEqual(error.headers, {});
      assert.equal(isOciError(error), true);
    });
  }

  it('carries message, detail, status, headers and cause', () => {
    const cause = new Error('disk');
    const error = new OciError('UNAVAILABLE', {
      message: 'store down',
      detail: { retry: true },
      status: 502,
      headers: { 'retry-after': '1' },
      cause,
    });
    assert.deepEqual(error.toJSON(), { code: 'UNAVAILABLE', message: 'store down', detail: { retry: true } });
    assert.equal(error.status, 502);
    assert.deepEqual(error.headers, { 'retry-after': '1' });
    assert.equal(error.cause, cause);
    assert.equal(error.name, 'OciError');
    assert.equal(isOciError(new Error('x')), false);
  });

  it('unsupportedMethod is a 405 with Allow', () => {
    const error = unsupportedMethod('PUT');
    assert.equal(error.status, 405);
    assert.equal(error.code, 'UNSUPPORTED');
    assert.equal(error.message, 'method PUT is not supported by this mirror');
    assert.deepEqual(error.headers, { allow: 'GET, HEAD' });
  });

  it('rangeNotSatisfiable is a 416 with Content-Range bytes */size', () => {
    const error = rangeNotSatisfiable(10, 'bytes=20-');
    assert.equal(error.status, 416);
    assert.equal(error.code, 'RANGE_NOT_SATISFIABLE');
    assert.equal(error.message, 'range "bytes=20-" is not satisfiable for a blob of 10 bytes');
    assert.deepEqual(error.headers, { 'content-range': 'bytes */10' });
  });
});
