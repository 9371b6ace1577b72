// The public view of a store with private registries: private-only content and private image
// records are invisible; content also pulled from a public registry stays visible.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../test-support/memory-store.js';
import { hidePrivateContent, isPrivateOnly, labelHost } from './private-content.js';

const SOURCE = 'containerd.io/distribution.source.';

describe('labelHost', () => {
  const table: [string, string][] = [
    ['ghcr.io', 'ghcr.io'],
    ['Registry.Example.com:5000', 'registry.example.com'],
    ['index.docker.io', 'docker.io'],
    ['[::1]:5000', '[::1]'],
    ['127.0.0.1:5000', '127.0.0.1'],
  ];
  for (const [input, want] of table) it(`${input} → ${want}`, () => assert.equal(labelHost(input), want));
});

describe('isPrivateOnly', () => {
  const hosts = new Set(['ghcr.io', '127.0.0.1']);
  const table: [string, Record<string, string>, boolean][] = [
    ['no source labels (unknown provenance) is not private-only', {}, false],
    ['one private source', { [`${SOURCE}ghcr.io`]: 'org/app' }, true],
    ['private source without port', { [`${SOURCE}127.0.0.1`]: 'test/app' }, true],
    [
      'private and public sources',
      { [`${SOURCE}ghcr.io`]: 'org/app', [`${SOURCE}docker.io`]: 'library/base' },
      false,
    ],
    ['public only', { [`${SOURCE}docker.io`]: 'library/base' }, false],
    ['empty repository list is no source', { [`${SOURCE}ghcr.io`]: '' }, false],
  ];
  for (const [name, labels, want] of table) it(name, () => assert.equal(isPrivateOnly(labels, hosts), want));
});

describe('hidePrivateContent', () => {
  const store = new MemoryStore();
  const secret = store.addBlob('private layer', { [`${SOURCE}ghcr.io`]: 'org/app' });
  const shared = store.addBlob('shared base', {
    [`${SOURCE}ghcr.io`]: 'org/app',
    [`${SOURCE}docker.io`]: 'library/base',
  });
  const open = store.addBlob('public layer', { [`${SOURCE}docker.io`]: 'library/base' });
  store.setImage('ghcr.io/org/app:v1', {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: secret.digest,
    size: secret.size,
  });
  store.setImage('docker.io/library/base:v1', {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: open.digest,
    size: open.size,
  });
  const view = hidePrivateContent(store, ['GHCR.io']);

  it('hides private-only blobs from info, read and listContent', async () => {
    assert.equal(await view.info(secret.digest), undefined);
    assert.equal(await view.read(secret.digest), undefined);
    assert.deepEqual(
      (await view.listContent()).map((b) => b.digest).sort(),
      [shared.digest, open.digest].sort(),
    );
  });

  it('keeps blobs that also came from a public registry', async () => {
    assert.equal((await view.info(shared.digest))?.size, shared.size);
    const stream = await view.read(shared.digest);
    assert.ok(stream);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'shared base');
  });

  it('hides image records of private registries', async () => {
    assert.equal(await view.getImage('ghcr.io/org/app:v1'), undefined);
    assert.equal((await view.getImage('docker.io/library/base:v1'))?.target.digest, open.digest);
    assert.deepEqual(
      (await view.listImages()).map((i) => i.name),
      ['docker.io/library/base:v1'],
    );
  });
});
