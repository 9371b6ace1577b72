// Property-based fuzzing of the registry HTTP surface through `app.inject()`: random methods,
// paths (traversal, encodings, odd names and references), `ns` values and headers against a real
// registry service over a spying MemoryStore. Properties: never a 5xx or a crash, every answer
// within a second, the store only ever sees validated names and digests, and every digest it sees
// maps to a file inside the content directory (`blobPath`). Bounded in runs and time.
import assert from 'node:assert/strict';
import { isAbsolute, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { blobPath } from '../containerd/blob-path.js';
import { isDigest } from '../oci/digest.js';
import { parseRegistryHost, parseRepository } from '../oci/reference.js';
import { createRegistryService } from '../registry/registry-service.js';
import type { ContentStore, Digest } from '../store/content-store.js';
import { MemoryStore } from '../../test-support/memory-store.js';
import { buildApp } from './app.js';

const CONTENT_ROOT = '/var/lib/containerd/io.containerd.content.v1.content';
// A fixed number of inputs from a fixed seed, never a time window: the same inputs on any machine.
const RUNS = Number(process.env.PEILI_FUZZ_RUNS ?? 1000);

const store = new MemoryStore();
const image = store.addOciImage('docker.io/library/app:v1', { layers: ['layer one', 'layer two'] });

/** Everything the service asked the store, for the properties below. */
const seen = { digests: [] as string[], names: [] as string[], calls: 0 };
const spying: ContentStore = {
  listImages: (signal) => (seen.calls++, store.listImages(signal)),
  getImage: (name, signal) => {
    seen.calls++;
    seen.names.push(name);
    return store.getImage(name, signal);
  },
  info: (digest, signal) => {
    seen.calls++;
    seen.digests.push(digest);
    return store.info(digest, signal);
  },
  listContent: (signal) => store.listContent(signal),
  read: (digest, range, signal) => {
    seen.calls++;
    seen.digests.push(digest);
    return store.read(digest, range, signal);
  },
  subscribe: (signal) => store.subscribe(signal),
};

const app = buildApp({ service: createRegistryService({ store: spying }) });
after(() => app.close());

const HEX = '0123456789abcdef';
const hex = (n: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...HEX), { minLength: n, maxLength: n }).map((c) => c.join(''));

/** Path segments that try to escape, confuse decoding or break parsers. */
const nasty = fc.constantFrom(
  '..',
  '.',
  '%2e%2e',
  '%2E%2E%2F',
  '%2f',
  '%5c',
  '..%2f..%2fetc%2fpasswd',
  '%00',
  '%',
  '%zz',
  '~',
  'a b',
  '\u00e9',
  '%C3%A9',
  'sha256:' + '0'.repeat(64),
  'blobs',
  'manifests',
  '',
  'x'.repeat(300),
);
const nameSegment = fc.oneof(
  fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/),
  nasty,
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.string({ maxLength: 8 }),
);
const digestish = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
  fc.constantFrom(...[...image.layers, image.config, image.manifest].map((d) => d.digest)),
  fc
    .tuple(
      fc.constantFrom('sha256', 'sha512', 'md5', '', 'SHA256', 'sha256+b64'),
      fc.string({ maxLength: 70 }),
    )
    .map(([alg, rest]) => encodeURIComponent(`${alg}:${rest}`)),
  hex(64).map((h) => `sha256:../../${h}`),
  nasty,
);
const reference = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,20}$/), digestish, nasty);

/** Well-formed but wrong: valid names and references the store mostly does not hold. */
const wellFormed = fc
  .tuple(
    fc.array(fc.stringMatching(/^[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,4})?$/), { minLength: 1, maxLength: 3 }),
    fc.constantFrom('manifests', 'blobs'),
    fc.oneof(
      hex(64).map((h) => `sha256:${h}`),
      fc.constantFrom(...[...image.layers, image.config, image.manifest].map((d) => d.digest)),
      fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,20}$/),
    ),
  )
  .map(([name, kind, ref]) => `/v2/${name.join('/')}/${kind}/${ref}`);

const path = fc.oneof(
  { arbitrary: wellFormed, weight: 3 },
  fc
    .tuple(
      fc.array(nameSegment, { minLength: 1, maxLength: 4 }),
      fc.constantFrom('manifests', 'blobs', 'tags', 'uploads', '_catalog'),
      fc.oneof(reference, digestish),
    )
    .map(([name, kind, ref]) => `/v2/${name.join('/')}/${kind}/${ref}`),
  fc.array(nameSegment, { maxLength: 6 }).map((parts) => `/${parts.join('/')}`),
  fc.constantFrom(
    '/v2/',
    '/v2',
    '/',
    '//v2//library//app//manifests//v1',
    '/v2/library/app/manifests/v1/',
    `/v2/library/app/manifests/v1`,
    `/v2/library/app/blobs/${image.layers[0]!.digest}`,
  ),
);
const ns = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom('docker.io', 'registry-1.docker.io', 'ghcr.io', '127.0.0.1:5000', '[::1]:5000', ''),
  fc.string({ maxLength: 40 }),
  fc.array(fc.constantFrom('docker.io', 'x'), { minLength: 2, maxLength: 3 }),
);
const headers = fc.record(
  {
    range: fc.oneof(
      fc.constantFrom(
        'bytes=0-',
        'bytes=0-0',
        'bytes=5-1',
        'bytes=-5',
        'bytes=0-1,3-4',
        'bytes=99999999999999999999-',
      ),
      fc.string({ maxLength: 30 }),
    ),
    'x-peili-mirrored': fc.constantFrom('true', 'TRUE', 'false', '1'),
    accept: fc.string({ maxLength: 60 }),
  },
  { requiredKeys: [] },
);
const method = fc.oneof(
  { arbitrary: fc.constantFrom('GET', 'HEAD'), weight: 5 },
  { arbitrary: fc.constantFrom('PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'), weight: 1 },
);

/** Header values must be sendable: drop characters HTTP forbids in them. */
function sendable(value: string): string {
  return value.replace(/[^\t\x20-\x7e]/g, '');
}

/**
 * light-my-request parses the URL with WHATWG rules, where `\` is a slash and a leading `//`
 * names a host: percent-encode backslashes so the raw path reaches the app as a client sent it.
 */
function injectable(path: string): string {
  return path.replaceAll('\\', '%5C');
}

function query(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  const values = Array.isArray(value) ? value : [value];
  return '?' + values.map((v) => `ns=${encodeURIComponent(v)}`).join('&');
}

function assertValidatedName(name: string): void {
  const slash = name.indexOf('/');
  assert.ok(slash > 0, `store asked for image ${JSON.stringify(name)}`);
  parseRegistryHost(name.slice(0, slash));
  const colon = name.lastIndexOf(':');
  parseRepository(name.slice(slash + 1, colon));
}

describe('registry HTTP surface under fuzzing', () => {
  it('never answers 5xx, never hangs, and the store only sees validated input', async () => {
    let tried = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(method, path, ns, headers, async (m, p, n, h) => {
        tried++;
        seen.digests.length = 0;
        seen.names.length = 0;
        const sent = Object.fromEntries(Object.entries(h).map(([k, v]) => [k, sendable(v)]));
        const response = await Promise.race([
          app.inject({ method: m as 'GET', url: injectable(p) + query(n), headers: sent }),
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error(`${m} ${p} hung`)), 1_000).unref(),
          ),
        ]);
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        assert.ok(
          response.statusCode < 500,
          `${m} ${p}${query(n)} → ${response.statusCode} ${response.body}`,
        );
        for (const digest of seen.digests) {
          assert.ok(isDigest(digest), `store saw digest ${JSON.stringify(digest)}`);
          const file = blobPath(CONTENT_ROOT, digest as Digest);
          assert.ok(file !== undefined);
          const inside = relative(CONTENT_ROOT, file);
          assert.ok(!inside.startsWith('..') && !isAbsolute(inside), `${file} outside the content store`);
        }
        for (const name of seen.names) assertValidatedName(name);
      }),
      {
        numRuns: RUNS,
        seed: Number(process.env.PEILI_FUZZ_SEED ?? Date.now() % 2 ** 31),
      },
    );
    const summary = [...statuses]
      .sort(([a], [b]) => a - b)
      .map(([s, c]) => `${s}×${c}`)
      .join(' ');
    console.log(`registry HTTP fuzz: ${tried} requests tried (${summary}); store called ${seen.calls} times`);
    assert.equal(tried, RUNS, 'every input was tried');
    assert.ok(seen.calls > 0, 'some inputs reached the store');
    assert.ok((statuses.get(200) ?? 0) > 0, 'some inputs were served');
  });
});
