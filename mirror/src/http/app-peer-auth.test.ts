import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPeerAuth } from '../peer-auth/peer-auth.js';
import { createRegistryService } from '../registry/registry-service.js';
import { MemoryStore } from '../../test-support/memory-store.js';
import { buildApp } from './app.js';

const SECRET = 'a-cluster-secret-of-32-bytes-xxx';

describe('buildApp with peer authentication', async () => {
  const store = new MemoryStore();
  const blob = store.addBlob(Buffer.from('layer bytes'), {
    'containerd.io/distribution.source.docker.io': 'library/app',
  });
  const auth = createPeerAuth(SECRET);
  const app = buildApp({ service: createRegistryService({ store }), authenticatePeer: auth.verify });
  const url = `/v2/library/app/blobs/${blob.digest}?ns=docker.io`;

  const cases = [
    {
      name: 'a signed peer request is served',
      headers: { 'x-peili-mirrored': 'true', ...auth.sign({ method: 'GET', url, body: '' }) },
      status: 200,
    },
    { name: 'an unsigned peer request gets 401', headers: { 'x-peili-mirrored': 'true' }, status: 401 },
    {
      name: 'a peer request signed with another secret gets 401',
      headers: {
        'x-peili-mirrored': 'true',
        ...createPeerAuth('another-secret-of-32-bytes-xxxxx').sign({ method: 'GET', url, body: '' }),
      },
      status: 401,
    },
    { name: 'a request from the local containerd needs no signature', headers: {}, status: 200 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const response = await app.inject({ method: 'GET', url, headers: c.headers });
      assert.equal(response.statusCode, c.status);
      if (c.status === 401) {
        assert.deepEqual(JSON.parse(response.body), {
          errors: [{ code: 'UNAUTHORIZED', message: 'peer request without a valid signature' }],
        });
      } else {
        assert.equal(response.body, 'layer bytes');
      }
    });
  }
});
