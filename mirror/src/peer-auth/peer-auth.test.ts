import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PEER_AUTH_HEADER } from '../peer-transport/headers.js';
import { createPeerAuth } from './peer-auth.js';

const SECRET = 'a-cluster-secret-of-32-bytes-xxx';

describe('createPeerAuth', () => {
  it('rejects a secret shorter than 16 bytes, naming the setting', () => {
    assert.throws(() => createPeerAuth('short', { field: '--peer-secret-file' }), {
      name: 'RangeError',
      message: '--peer-secret-file: the peer secret must be at least 16 bytes',
    });
  });

  it('signs in the documented header format', () => {
    const auth = createPeerAuth(SECRET, { now: () => 1_700_000_000_000 });
    const headers = auth.sign({ method: 'GET', url: '/v2/x/blobs/sha256:00', body: '' });
    assert.match(headers[PEER_AUTH_HEADER]!, /^v1 t=1700000000000 s=[0-9a-f]{64}$/);
  });

  const request = { method: 'POST', url: '/peili/v1/advertise', body: '{"keys":[]}' };
  const cases: {
    name: string;
    tamper: (r: typeof request, h: Record<string, string>) => [typeof request, Record<string, string>];
    verifierNow?: number;
    secret?: string;
    ok: boolean;
  }[] = [
    { name: 'an untouched request', tamper: (r, h) => [r, h], ok: true },
    { name: 'another path', tamper: (r, h) => [{ ...r, url: '/peili/v1/withdraw' }, h], ok: false },
    { name: 'another method', tamper: (r, h) => [{ ...r, method: 'PUT' }, h], ok: false },
    { name: 'another body', tamper: (r, h) => [{ ...r, body: '{"keys":["x"]}' }, h], ok: false },
    { name: 'no header', tamper: (r) => [r, {}], ok: false },
    { name: 'a garbled header', tamper: (r) => [r, { [PEER_AUTH_HEADER]: 'v1 t=abc s=zz' }], ok: false },
    {
      name: 'another secret',
      tamper: (r, h) => [r, h],
      secret: 'another-secret-of-32-bytes-xxxxx',
      ok: false,
    },
    {
      name: 'a signature 61 s old (replay window passed)',
      tamper: (r, h) => [r, h],
      verifierNow: 1_000 + 61_000,
      ok: false,
    },
    { name: 'a signature 59 s old', tamper: (r, h) => [r, h], verifierNow: 1_000 + 59_000, ok: true },
  ];
  for (const c of cases) {
    it(`verify: ${c.name} → ${c.ok}`, () => {
      const signer = createPeerAuth(SECRET, { now: () => 1_000 });
      const verifier = createPeerAuth(c.secret ?? SECRET, { now: () => c.verifierNow ?? 1_000 });
      const [req, headers] = c.tamper(request, signer.sign(request));
      assert.equal(verifier.verify({ ...req, headers }), c.ok);
    });
  }
});
