// The registry API with a private registry, through `inject()`: the challenge reaches the client
// as a 401 with the upstream's WWW-Authenticate (no body on HEAD), proven credentials are served
// from the whole store, and everything else sees the public view only.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../http/app.js';
import { createRegistryService } from '../registry/registry-service.js';
import { MemoryStore } from '../../test-support/memory-store.js';
import { hidePrivateContent } from './private-content.js';
import { createUpstreamAccess } from './upstream-access.js';

const HOST = '127.0.47.5';
const CHALLENGE = 'Basic realm="test"';
const GOOD = `Basic ${Buffer.from('u:p').toString('base64')}`;
let app: FastifyInstance;
let registry: string;
let close: (() => void) | undefined;
after(async () => {
  close?.();
  await app?.close();
});

const store = new MemoryStore();
const layer = store.addBlob('private bytes', { 'containerd.io/distribution.source.127.0.47.5': 'org/app' });

before(async () => {
  const upstream = createServer((req, res) => {
    if (req.headers.authorization === GOOD) return void res.writeHead(200).end();
    res.writeHead(401, { 'www-authenticate': CHALLENGE }).end();
  });
  await new Promise<void>((resolve) => upstream.listen(0, HOST, resolve));
  close = () => {
    upstream.closeAllConnections();
    upstream.close();
  };
  registry = `${HOST}:${(upstream.address() as { port: number }).port}`;
  app = buildApp({
    service: createRegistryService({ store: hidePrivateContent(store, [registry]) }),
    access: {
      control: createUpstreamAccess({}, { registries: [registry] }),
      privateService: createRegistryService({ store }),
    },
  });
});

describe('registry API with a private registry', () => {
  it('answers 401 with the upstream challenge, JSON on GET and no body on HEAD', async () => {
    const url = `/v2/org/app/blobs/${layer.digest}?ns=${encodeURIComponent(registry)}`;
    const get = await app.inject({ method: 'GET', url });
    assert.equal(get.statusCode, 401);
    assert.equal(get.headers['www-authenticate'], CHALLENGE);
    assert.equal(JSON.parse(get.body).errors[0].code, 'UNAUTHORIZED');
    const head = await app.inject({ method: 'HEAD', url });
    assert.equal(head.statusCode, 401);
    assert.equal(head.headers['www-authenticate'], CHALLENGE);
    assert.equal(head.body, '');
  });

  it('serves the private blob to proven credentials', async () => {
    const response = await app.inject({
      method: 'GET',
      url: `/v2/org/app/blobs/${layer.digest}?ns=${encodeURIComponent(registry)}`,
      headers: { authorization: GOOD },
    });
    assert.equal(response.statusCode, 200);
    assert.equal(response.body, 'private bytes');
  });

  it('hides it under a public ns or without ns', async () => {
    for (const url of [
      `/v2/library/x/blobs/${layer.digest}?ns=docker.io`,
      `/v2/org/app/blobs/${layer.digest}`,
    ]) {
      const response = await app.inject({ method: 'GET', url, headers: { authorization: GOOD } });
      assert.equal(response.statusCode, 404, url);
      assert.equal(JSON.parse(response.body).errors[0].code, 'BLOB_UNKNOWN');
    }
  });

  it('refuses a loop-guarded request for private content when peers are not authenticated', async () => {
    const response = await app.inject({
      method: 'GET',
      url: `/v2/org/app/blobs/${layer.digest}?ns=${encodeURIComponent(registry)}`,
      headers: { 'x-peili-mirrored': 'true' },
    });
    assert.equal(response.statusCode, 404);
  });
});
