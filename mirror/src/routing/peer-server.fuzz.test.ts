// Property-based fuzzing of the peer protocol (`buildPeerApp`) through `app.inject()`: random
// methods, paths, content types and bodies — arbitrary JSON, near-valid messages with one field
// wrong, raw bytes. Properties: never a 5xx, never a hang; with peer authentication on, nothing
// unsigned is accepted and the index never changes. Bounded in runs and time.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { createPeerAuth } from '../peer-auth/peer-auth.js';
import { createIndexStore } from './index-store.js';
import { buildPeerApp } from './peer-server.js';

// A fixed number of inputs from a fixed seed, never a time window: the same inputs on any machine.
const RUNS = Number(process.env.PEILI_FUZZ_RUNS ?? 1000);
const SEED = Number(process.env.PEILI_FUZZ_SEED ?? Date.now() % 2 ** 31);

const digest = fc
  .array(fc.constantFrom(...'0123456789abcdef'), { minLength: 64, maxLength: 64 })
  .map((c) => `sha256:${c.join('')}`);
const key = fc.oneof(
  digest,
  fc.constantFrom('docker.io/library/nginx:1.27', 'ghcr.io/org/app:v1', '127.0.0.1:5000/test/app:v1'),
  fc.string({ maxLength: 80 }),
);
const holder = fc.oneof(
  fc.record({
    id: fc.constantFrom('127.0.45.2:5001'),
    registryUrl: fc.constantFrom('http://127.0.45.2:5000'),
  }),
  fc.record({ id: fc.string({ maxLength: 40 }), registryUrl: fc.string({ maxLength: 40 }) }),
  fc.anything(),
);
/** Messages shaped like the protocol's, with any field possibly wrong. */
const nearValid = fc.oneof(
  fc.record(
    {
      holder,
      ttlSeconds: fc.oneof(fc.integer({ min: -10, max: 200_000 }), fc.double(), fc.string()),
      keys: fc.oneof(fc.array(key, { maxLength: 20 }), fc.anything()),
    },
    { requiredKeys: [] },
  ),
  fc.record({ keys: fc.oneof(fc.array(key, { maxLength: 1100 }), fc.anything()) }, { requiredKeys: [] }),
);
const body = fc.oneof(
  nearValid.map((v) => JSON.stringify(v) ?? 'null'),
  fc.json(),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.constant(''),
);
const route = fc.oneof(
  { arbitrary: fc.constantFrom('/peili/v1/advertise', '/peili/v1/withdraw', '/peili/v1/lookup'), weight: 4 },
  {
    arbitrary: fc.oneof(
      key.map((k) => `/peili/v1/lookup?key=${encodeURIComponent(k)}`),
      fc.constantFrom(
        '/peili/v1/lookup?key=a&key=b',
        '/peili/v1/lookup?key=',
        '/peili/v2/lookup',
        '/',
        '/peili/v1/',
      ),
      fc.string({ maxLength: 30 }).map((s) => `/peili/v1/${encodeURIComponent(s)}`),
    ),
    weight: 1,
  },
);
const method = fc.oneof(
  { arbitrary: fc.constantFrom('POST', 'GET'), weight: 5 },
  { arbitrary: fc.constantFrom('PUT', 'DELETE', 'HEAD', 'PATCH'), weight: 1 },
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  undefined,
);

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} hung`)), 1_000).unref()),
  ]);
}

describe('peer protocol under fuzzing', () => {
  it('never answers 5xx or hangs, whatever the method, path, content type or body', async () => {
    const app = buildPeerApp({ index: createIndexStore() });
    after(() => app.close());
    let tried = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(method, route, contentType, body, async (m, url, type, payload) => {
        tried++;
        const response = await withTimeout(
          app.inject({
            method: m as 'POST',
            url,
            ...(type ? { headers: { 'content-type': type } } : {}),
            ...(m === 'GET' || m === 'HEAD' ? {} : { payload }),
          }),
          `${m} ${url}`,
        );
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        assert.ok(
          response.statusCode < 500,
          `${m} ${url} ${payload.slice(0, 80)} → ${response.statusCode} ${response.body}`,
        );
      }),
      { numRuns: RUNS, seed: SEED },
    );
    const summary = [...statuses]
      .sort(([a], [b]) => a - b)
      .map(([s, c]) => `${s}×${c}`)
      .join(' ');
    console.log(`peer protocol fuzz: ${tried} requests tried (${summary})`);
    assert.equal(tried, RUNS, 'every input was tried');
    assert.ok((statuses.get(200) ?? 0) > 0, 'some inputs were accepted');
  });

  it('with peer authentication, rejects every unsigned or wrongly signed request and keeps the index empty', async () => {
    const index = createIndexStore();
    const auth = createPeerAuth('a cluster secret of enough bytes');
    const forged = createPeerAuth('another secret of enough bytes!');
    const app = buildPeerApp({ index, authenticate: auth.verify });
    after(() => app.close());
    let tried = 0;
    let unauthorized = 0;
    let rejectedEarly = 0;
    await fc.assert(
      fc.asyncProperty(route, body, fc.boolean(), async (url, payload, sign) => {
        tried++;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (sign) Object.assign(headers, forged.sign({ method: 'POST', url, body: payload }));
        const response = await withTimeout(
          app.inject({ method: 'POST', url, headers, payload }),
          `POST ${url}`,
        );
        // 401 once the body parsed; an unparsable body is refused (400/415) before it is authenticated.
        assert.ok([400, 401, 404, 413, 415].includes(response.statusCode), `${url} → ${response.statusCode}`);
        if (response.statusCode === 400 || response.statusCode === 415) rejectedEarly++;
        else if (response.statusCode === 401) unauthorized++;
      }),
      { numRuns: Math.ceil(RUNS / 3), seed: SEED },
    );
    console.log(
      `peer protocol auth fuzz: ${tried} unsigned/forged requests tried, all refused (${unauthorized} × 401, ${rejectedEarly} unparsable)`,
    );
    assert.ok(unauthorized > 0, 'some requests reached authentication');
    assert.deepEqual(index.keys(), []);
  });
});
