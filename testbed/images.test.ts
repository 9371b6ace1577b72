import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  buildImage,
  IMAGES,
  layerEntries,
  MEDIA_TYPES,
  seededBytes,
  sizedImage,
  specHash,
  writeLayout,
  type ImageSpec,
  type OciLayout,
} from './images.js';
import { parseTar } from './tar.js';

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const blobPath = (layout: OciLayout, digest: string): string =>
  join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
const readJson = async (layout: OciLayout, digest: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(blobPath(layout, digest), 'utf8')) as Record<string, unknown>;

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'peili-images-test-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('writeLayout', () => {
  it('gives the same digests when the same spec is built twice', async () => {
    const first = await writeLayout(IMAGES.app, join(work, 'app-1'));
    const second = await writeLayout(IMAGES.app, join(work, 'app-2'));
    const { dir: _a, ...a } = first;
    const { dir: _b, ...b } = second;
    assert.deepEqual(a, b);
    assert.deepEqual(
      await readdir(join(first.dir, 'blobs', 'sha256')),
      await readdir(join(second.dir, 'blobs', 'sha256')),
    );
  });

  it('pins the uncompressed layer digests and the config digest (the CRI image id) of IMAGES.app', async () => {
    // These depend on the tar bytes and config JSON only, not on the zlib build.
    const layout = await writeLayout(IMAGES.app, join(work, 'app-pinned'));
    assert.deepEqual(layout.images[0]?.diffIds, [
      'sha256:b35e96897d7260300c43b61230cd85244138c636b13d6147e3268c8681944235',
      'sha256:a8e83777bf476ef8332dd9c91af4fe095204670fa29d8bd8fb18f72f9ce038a6',
      'sha256:4cc4c1c02f1ad3f31a660ac8f0aa901d2ff883b97b7f1d4d203380e36b7be94e',
    ]);
    assert.equal(
      layout.images[0]?.configDigest,
      'sha256:994ec0827a5e1efaaeee7b62f1f6dfd97270ba3bfa6df9f675495125879eb3c8',
    );
  });

  it('writes a valid OCI layout: every blob named by its sha256, config diff_ids of the uncompressed tars', async () => {
    const layout = await writeLayout(IMAGES.app, join(work, 'app-valid'));
    assert.equal(await readFile(join(layout.dir, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
    const index = JSON.parse(await readFile(join(layout.dir, 'index.json'), 'utf8')) as {
      manifests: Record<string, unknown>[];
    };
    assert.deepEqual(index.manifests, [
      {
        mediaType: MEDIA_TYPES.manifest,
        digest: layout.topDigest,
        size: layout.images[0]?.manifestSize,
        annotations: { 'org.opencontainers.image.ref.name': 'v1' },
      },
    ]);
    assert.equal(layout.blobs.length, 5);
    for (const blob of layout.blobs) {
      const bytes = await readFile(blobPath(layout, blob.digest));
      assert.equal(sha256(bytes), blob.digest);
      assert.equal(bytes.length, blob.size);
    }
    const image = layout.images[0]!;
    const manifest = await readJson(layout, image.manifestDigest);
    assert.deepEqual(
      (manifest.layers as { digest: string }[]).map((l) => l.digest),
      image.layerDigests,
    );
    const config = await readJson(layout, image.configDigest);
    assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: image.diffIds });
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.os, 'linux');
    for (const [i, digest] of image.layerDigests.entries()) {
      assert.equal(sha256(gunzipSync(await readFile(blobPath(layout, digest)))), image.diffIds[i]);
    }
    assert.equal(
      layout.totalSize,
      layout.blobs.reduce((sum, b) => sum + b.size, 0),
    );
    assert.ok(
      layout.totalSize > 1_000_000 && layout.totalSize < 1_150_000,
      `app is about 1 MiB, got ${layout.totalSize}`,
    );
  });

  it('writes reproducible tars: mtime 0, parent directories first, the given contents', async () => {
    const layout = await writeLayout(IMAGES.app, join(work, 'app-tar'));
    const tar = gunzipSync(await readFile(blobPath(layout, layout.images[0]!.layerDigests[0]!)));
    const entries = await parseTar(tar);
    assert.deepEqual(
      entries.map((e) => [e.path, e.type, e.mode, e.mtime, e.size]),
      [
        ['app/', 'directory', 0o755, 0, 0],
        ['app/hello.txt', 'file', 0o644, 0, 17],
        ['app/data.bin', 'file', 0o644, 0, 512 * 1024],
      ],
    );
    assert.equal(entries[1]?.content.toString(), 'hello from peili\n');
    assert.deepEqual(entries[2]?.content, Buffer.concat([...seededBytes('app:/app/data.bin', 512 * 1024)]));
  });

  it('writes an OCI index for two platforms whose manifests share the common layers', async () => {
    const layout = await writeLayout(IMAGES.multi, join(work, 'multi'));
    assert.equal(layout.topDigest, layout.indexDigest);
    assert.equal(layout.topMediaType, MEDIA_TYPES.index);
    const index = await readJson(layout, layout.indexDigest!);
    assert.deepEqual(
      (index.manifests as { digest: string; platform: unknown }[]).map((m) => [m.digest, m.platform]),
      [
        [layout.manifestDigests[0], { architecture: 'amd64', os: 'linux' }],
        [layout.manifestDigests[1], { architecture: 'arm64', os: 'linux' }],
      ],
    );
    const [amd64, arm64] = layout.images;
    assert.deepEqual([amd64?.platform, arm64?.platform], ['linux/amd64', 'linux/arm64']);
    assert.deepEqual(amd64?.layerDigests.slice(0, 2), arm64?.layerDigests.slice(0, 2));
    assert.notEqual(amd64?.layerDigests[2], arm64?.layerDigests[2]);
    assert.notEqual(amd64?.configDigest, arm64?.configDigest);
    // 1 index + 2 manifests + 2 configs + 2 shared layers + 2 per-arch layers, each listed once.
    assert.equal(layout.blobs.length, 9);
    assert.equal(new Set(layout.blobs.map((b) => b.digest)).size, 9);
  });

  it('keeps plain tar layers uncompressed, so the layer digest is the diff id', async () => {
    const spec: ImageSpec = {
      name: 'raw',
      layers: [{ compression: 'none', files: [{ path: '/x', size: 1000 }] }],
    };
    const layout = await writeLayout(spec, join(work, 'raw'));
    const image = layout.images[0]!;
    assert.equal(image.layerDigests[0], image.diffIds[0]);
    assert.equal(
      layout.blobs.find((b) => b.digest === image.layerDigests[0])?.mediaType,
      MEDIA_TYPES.layerTar,
    );
  });
});

describe('buildImage', () => {
  it('builds once and then returns the cached layout in <cacheDir>/<specHash>', async () => {
    const cache = join(work, 'cache');
    const spec = sizedImage(0.5, 2);
    const first = await buildImage(spec, cache);
    assert.equal(first.dir, join(cache, specHash(spec)));
    const second = await buildImage(spec, cache);
    assert.deepEqual(second, first);
    assert.deepEqual(await readdir(cache), [specHash(spec)]);
    const layers = first.images[0]!.layerDigests.map((d) => first.blobs.find((b) => b.digest === d)!.size);
    assert.equal(layers.length, 2);
  });
});

describe('buildImage locking', () => {
  const spec: ImageSpec = { name: 'lock', layers: [{ files: [{ path: '/l', size: 4096 }] }] };

  it('builds once for concurrent callers in one process', async () => {
    const cache = join(work, 'cache-concurrent');
    const [a, b] = await Promise.all([buildImage(spec, cache), buildImage(spec, cache)]);
    assert.deepEqual(a, b);
    assert.deepEqual(await readdir(cache), [specHash(spec)]);
  });

  it('waits while a live process holds the lock, then builds', async () => {
    const cache = join(work, 'cache-locked');
    await mkdir(cache);
    const lock = join(cache, `${specHash(spec)}.lock`);
    await writeFile(lock, String(process.pid));
    let settled = false;
    const pending = buildImage(spec, cache).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(settled, false);
    await rm(lock);
    assert.equal((await pending).dir, join(cache, specHash(spec)));
    assert.deepEqual(await readdir(cache), [specHash(spec)]);
  });

  it('takes over the lock of a builder that died', async () => {
    const cache = join(work, 'cache-stale');
    await mkdir(cache);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    await writeFile(join(cache, `${specHash(spec)}.lock`), String(dead));
    assert.equal((await buildImage(spec, cache)).dir, join(cache, specHash(spec)));
    assert.deepEqual(await readdir(cache), [specHash(spec)]);
  });
});

describe('specHash', () => {
  it('ignores key order and undefined fields but not content', () => {
    const a: ImageSpec = { name: 'x', tag: 'v1', layers: [{ files: [{ path: '/a', size: 1 }] }] };
    const b: ImageSpec = {
      layers: [{ files: [{ size: 1, path: '/a' }] }],
      tag: 'v1',
      name: 'x',
      cmd: undefined,
    };
    const c: ImageSpec = { name: 'x', tag: 'v1', layers: [{ files: [{ path: '/a', size: 2 }] }] };
    assert.equal(specHash(a), specHash(b));
    assert.notEqual(specHash(a), specHash(c));
  });
});

describe('seededBytes', () => {
  it('is the same stream whatever the chunk size, and differs by seed', () => {
    const whole = Buffer.concat([...seededBytes('s', 10_000, 4096)]);
    assert.equal(whole.length, 10_000);
    assert.deepEqual(Buffer.concat([...seededBytes('s', 10_000, 999)]), whole);
    assert.notDeepEqual(Buffer.concat([...seededBytes('t', 10_000)]), whole);
  });
});

describe('sizedImage', () => {
  const cases: { total: number; layers: number; sizes: number[] }[] = [
    { total: 10, layers: 1, sizes: [10 * 1048576] },
    { total: 100, layers: 4, sizes: [26214400, 26214400, 26214400, 26214400] },
    { total: 1, layers: 3, sizes: [349525, 349525, 349526] },
  ];
  for (const { total, layers, sizes } of cases) {
    it(`splits ${total} MiB over ${layers} layer(s)`, () => {
      const spec = sizedImage(total, layers);
      assert.equal(spec.name, `sized-${total}m-${layers}l`);
      assert.deepEqual(
        spec.layers.map((l) => l.files.map((f) => f.size)),
        sizes.map((s) => [s]),
      );
    });
  }

  const errors: { total: number; layers: number; message: string }[] = [
    { total: 0, layers: 1, message: 'sizedImage: totalMiB must be > 0, got 0' },
    { total: 10, layers: 0, message: 'sizedImage: layers must be a whole number ≥ 1, got 0' },
    { total: 10, layers: 1.5, message: 'sizedImage: layers must be a whole number ≥ 1, got 1.5' },
  ];
  for (const { total, layers, message } of errors) {
    it(`rejects totalMiB=${total} layers=${layers}`, () => {
      assert.throws(() => sizedImage(total, layers), { message });
    });
  }
});

describe('layerEntries', () => {
  const bad: { path: string; message: string }[] = [
    { path: 'rel/path', message: 'image t: file path must be absolute and name a file, got "rel/path"' },
    { path: '/dir/', message: 'image t: file path must be absolute and name a file, got "/dir/"' },
    { path: '/a//b', message: 'image t: file path must be absolute and name a file, got "/a//b"' },
  ];
  for (const { path, message } of bad) {
    it(`rejects ${path}`, () => {
      assert.throws(() => layerEntries('t', { files: [{ path }] }), { message });
    });
  }

  it('adds each parent directory once, before its first file', () => {
    const entries = layerEntries('t', {
      files: [
        { path: '/a/b/c', content: 'x' },
        { path: '/a/d', size: 3 },
        { path: '/e', content: '' },
      ],
    });
    assert.deepEqual(
      entries.map((e) => [e.path, e.type, e.size]),
      [
        ['a/', 'directory', 0],
        ['a/b/', 'directory', 0],
        ['a/b/c', 'file', 1],
        ['a/d', 'file', 3],
        ['e', 'file', 0],
      ],
    );
  });
});
