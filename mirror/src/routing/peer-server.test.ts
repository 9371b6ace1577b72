import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createIndexStore } from './index-store.js';
import { buildPeerApp, type PeerRequestInfo } from './peer-server.js';
import { createPeerService } from './peer-service.js';
import { BOOT_ID_PATTERN, MAX_BODY_BYTES, MAX_KEYS_PER_BATCH, type PeerCaller } from './protocol.js';

const HOLDER = { id: '127.0.5.2:5001', registryUrl: 'http://127.0.5.2:5000' };
const D1 = 'sha256:' + 'a'.repeat(64);
const TAG = 'docker.io/library/nginx:1.27';

describe('peer protocol server', () => {
  // A fixed clock, so the remaining TTL in answers is exact.
  const now = (): number => 1_700_000_000_000;
  const index = createIndexStore({ now });
  const callers: PeerCaller[] = [];
  const app = buildPeerApp({ service: createPeerService(index, now, (caller) => callers.push(caller)) });
  const boot = index.bootId;
  after(() => app.close());

  const post = (path: string, payload: unknown) =>
    app.inject({ method: 'POST', url: `/peili/v1/${path}`, payload: payload as object });

  it('indexes an advertised batch and answers lookups by POST and GET', async () => {
    const advertised = await post('advertise', { holder: HOLDER, ttlSeconds: 60, keys: [D1, TAG] });
    assert.equal(advertised.statusCode, 200);
    assert.deepEqual(advertised.json(), { accepted: 2, boot });
    const byPost = await post('lookup', { keys: [D1, 'sha256:' + 'b'.repeat(64)] });
    assert.deepEqual(byPost.json(), {
      holders: { [D1]: [{ ...HOLDER, ttlSeconds: 60 }], ['sha256:' + 'b'.repeat(64)]: [] },
      boot,
    });
    const byGet = await app.inject({ method: 'GET', url: `/peili/v1/lookup?key=${encodeURIComponent(TAG)}` });
    assert.equal(byGet.statusCode, 200);
    assert.deepEqual(byGet.json(), { holders: { [TAG]: [{ ...HOLDER, ttlSeconds: 60 }] }, boot });
    const withdrawn = await post('withdraw', { holder: HOLDER, keys: [D1] });
    assert.deepEqual(withdrawn.json(), { removed: 1, boot });
    assert.deepEqual(index.get(D1), []);
    // Requests that do not name their sender (older nodes) are served and observed by no one.
    assert.deepEqual(callers, []);
  });

  it('answers with a boot id that is new for every index share', () => {
    assert.match(boot, BOOT_ID_PATTERN);
    assert.notEqual(createIndexStore().bootId, createIndexStore().bootId);
  });

  it('tells the observer who sent each request that names its sender', async () => {
    callers.length = 0;
    const from = `from=${encodeURIComponent(HOLDER.id)}&boot=b00t-1`;
    const advertise = await app.inject({
      method: 'POST',
      url: `/peili/v1/advertise?${from}`,
      payload: { holder: HOLDER, ttlSeconds: 60, keys: [D1] },
    });
    assert.equal(advertise.statusCode, 200);
    const lookup = await app.inject({ method: 'GET', url: `/peili/v1/lookup?key=${D1}&${from}` });
    assert.equal(lookup.statusCode, 200);
    const withdraw = await app.inject({
      method: 'POST',
      url: `/peili/v1/withdraw?${from}`,
      payload: { holder: HOLDER, keys: [D1] },
    });
    assert.deepEqual(withdraw.json(), { removed: 1, boot });
    assert.deepEqual(callers, [
      { id: HOLDER.id, boot: 'b00t-1' },
      { id: HOLDER.id, boot: 'b00t-1' },
      { id: HOLDER.id, boot: 'b00t-1' },
    ]);
  });

  const badCallers: [string, string, string][] = [
    [
      'from without boot',
      `from=${HOLDER.id}`,
      'query parameter boot must be 1 to 64 characters of [A-Za-z0-9_-]',
    ],
    [
      'a boot with a dot',
      `from=${HOLDER.id}&boot=a.b`,
      'query parameter boot must be 1 to 64 characters of [A-Za-z0-9_-]',
    ],
    ['boot without from', 'boot=abc', 'query parameter from must be a string of 1 to 300 characters'],
    ['from twice', `from=a&from=b&boot=abc`, 'query parameter from must be a string of 1 to 300 characters'],
  ];
  for (const [name, query, message] of badCallers) {
    it(`rejects a request naming its sender with ${name}`, async () => {
      callers.length = 0;
      const response = await app.inject({ method: 'GET', url: `/peili/v1/lookup?key=${D1}&${query}` });
      assert.equal(response.statusCode, 400);
      assert.deepEqual(response.json(), { error: message });
      assert.deepEqual(callers, []);
    });
  }

  const bad: [string, string, unknown, number, string][] = [
    ['advertise', 'an array body', [1], 400, 'body must be a JSON object'],
    [
      'advertise',
      'an unknown field',
      { holder: HOLDER, ttlSeconds: 1, keys: [D1], extra: 1 },
      400,
      'unknown field "extra"',
    ],
    ['advertise', 'no holder', { ttlSeconds: 1, keys: [D1] }, 400, 'holder must be an object'],
    [
      'advertise',
      'an empty holder id',
      { holder: { ...HOLDER, id: '' }, ttlSeconds: 1, keys: [D1] },
      400,
      'holder.id must be a string of 1 to 300 characters',
    ],
    [
      'advertise',
      'a registry URL with a slash',
      { holder: { ...HOLDER, registryUrl: 'http://x:5000/' }, ttlSeconds: 1, keys: [D1] },
      400,
      'holder.registryUrl must be an http(s) URL without a trailing slash',
    ],
    [
      'advertise',
      'an ftp registry URL',
      { holder: { ...HOLDER, registryUrl: 'ftp://x' }, ttlSeconds: 1, keys: [D1] },
      400,
      'holder.registryUrl must be an http(s) URL without a trailing slash',
    ],
    [
      'advertise',
      'a fractional TTL',
      { holder: HOLDER, ttlSeconds: 1.5, keys: [D1] },
      400,
      'ttlSeconds must be an integer from 1 to 86400',
    ],
    [
      'advertise',
      'a zero TTL',
      { holder: HOLDER, ttlSeconds: 0, keys: [D1] },
      400,
      'ttlSeconds must be an integer from 1 to 86400',
    ],
    [
      'advertise',
      'keys as a string',
      { holder: HOLDER, ttlSeconds: 1, keys: D1 },
      400,
      'keys must be an array of strings',
    ],
    ['advertise', 'no keys', { holder: HOLDER, ttlSeconds: 1, keys: [] }, 400, 'keys must not be empty'],
    [
      'advertise',
      'a key longer than 100 characters (quoted cut)',
      { holder: HOLDER, ttlSeconds: 1, keys: ['x'.repeat(150)] },
      400,
      `keys[0] is not a digest or tag reference: "${'x'.repeat(100)}"`,
    ],
    [
      'advertise',
      'a number key',
      { holder: HOLDER, ttlSeconds: 1, keys: [D1, 7] },
      400,
      'keys[1] must be a string',
    ],
    [
      'advertise',
      'a short digest',
      { holder: HOLDER, ttlSeconds: 1, keys: ['sha256:abc'] },
      400,
      'keys[0] is not a digest or tag reference: "sha256:abc"',
    ],
    [
      'advertise',
      'an upper-case digest',
      { holder: HOLDER, ttlSeconds: 1, keys: ['sha256:' + 'A'.repeat(64)] },
      400,
      `keys[0] is not a digest or tag reference: "sha256:${'A'.repeat(64)}"`,
    ],
    [
      'advertise',
      'a tag without registry',
      { holder: HOLDER, ttlSeconds: 1, keys: ['nginx:1.27'] },
      400,
      'keys[0] is not a digest or tag reference: "nginx:1.27"',
    ],
    [
      'advertise',
      'a tag key without tag',
      { holder: HOLDER, ttlSeconds: 1, keys: ['docker.io/library/nginx'] },
      400,
      'keys[0] is not a digest or tag reference: "docker.io/library/nginx"',
    ],
    [
      'advertise',
      'a digest reference',
      { holder: HOLDER, ttlSeconds: 1, keys: [`docker.io/library/nginx@${D1}`] },
      400,
      `keys[0] is not a digest or tag reference: "docker.io/library/nginx@${D1}"`,
    ],
    [
      'withdraw',
      'a ttl field',
      { holder: HOLDER, ttlSeconds: 1, keys: [D1] },
      400,
      'unknown field "ttlSeconds"',
    ],
    ['lookup', 'no keys', {}, 400, 'keys must be an array of strings'],
    [
      'lookup',
      `${MAX_KEYS_PER_BATCH + 1} keys`,
      { keys: Array(MAX_KEYS_PER_BATCH + 1).fill(D1) },
      413,
      `too many keys: ${MAX_KEYS_PER_BATCH + 1} > ${MAX_KEYS_PER_BATCH}`,
    ],
  ];
  for (const [path, name, payload, status, error] of bad) {
    it(`answers ${status} to ${path} with ${name}`, async () => {
      const response = await post(path, payload);
      assert.equal(response.statusCode, status);
      assert.deepEqual(response.json(), { error });
    });
  }

  const raw: [string, Record<string, string>, string, number, string][] = [
    ['invalid JSON', { 'content-type': 'application/json' }, '{"keys":', 400, 'body is not valid JSON'],
    ['an empty JSON body', { 'content-type': 'application/json' }, '', 400, 'body is not valid JSON'],
    ['a text body', { 'content-type': 'text/plain' }, 'keys', 415, 'content-type must be application/json'],
    [
      'a body over the limit',
      { 'content-type': 'application/json' },
      JSON.stringify({ keys: ['x'.repeat(MAX_BODY_BYTES)] }),
      413,
      `body exceeds ${MAX_BODY_BYTES} bytes`,
    ],
  ];
  for (const [name, headers, payload, status, error] of raw) {
    it(`answers ${status} to ${name}`, async () => {
      const response = await app.inject({ method: 'POST', url: '/peili/v1/lookup', headers, payload });
      assert.equal(response.statusCode, status);
      assert.deepEqual(response.json(), { error });
    });
  }

  const gets: [string, number, string][] = [
    ['/peili/v1/lookup', 400, 'query parameter key is required once'],
    ['/peili/v1/lookup?key=a&key=b', 400, 'query parameter key is required once'],
    ['/peili/v1/lookup?key=latest', 400, 'keys[0] is not a digest or tag reference: "latest"'],
    ['/peili/v2/lookup?key=x', 404, 'no route GET /peili/v2/lookup'],
  ];
  for (const [url, status, error] of gets) {
    it(`answers ${status} to GET ${url}`, async () => {
      const response = await app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, status);
      assert.deepEqual(response.json(), { error });
    });
  }
});

describe('peer protocol authentication hook', () => {
  const secret = 'shared-secret';
  const sign = (method: string, url: string, body: Buffer | string): string =>
    createHmac('sha256', secret).update(`${method}\n${url}\n`).update(body).digest('hex');
  const seen: PeerRequestInfo[] = [];
  const app = buildPeerApp({
    index: createIndexStore(),
    authenticate: (request) => {
      seen.push(request);
      return request.headers['x-peili-signature'] === sign(request.method, request.url, request.body);
    },
  });
  after(() => app.close());
  const body = JSON.stringify({ keys: [D1] });

  it('passes method, url, headers and the raw body to the verifier and accepts a valid signature', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/peili/v1/lookup',
      headers: {
        'content-type': 'application/json',
        'x-peili-signature': sign('POST', '/peili/v1/lookup', body),
      },
      payload: body,
    });
    assert.equal(response.statusCode, 200);
    assert.equal(seen.at(-1)?.body.toString(), body);
  });

  it('answers 401 to a bad signature, and to an unsigned GET', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/peili/v1/lookup',
      headers: {
        'content-type': 'application/json',
        'x-peili-signature': sign('POST', '/peili/v1/lookup', '{}'),
      },
      payload: body,
    });
    assert.equal(bad.statusCode, 401);
    assert.deepEqual(bad.json(), { error: 'peer authentication failed' });
    const get = await app.inject({ method: 'GET', url: `/peili/v1/lookup?key=${D1}` });
    assert.equal(get.statusCode, 401);
    assert.equal(seen.at(-1)?.body.length, 0);
  });
});
