// Deterministic OCI images built offline in TypeScript: the same spec always gives the same
// digests (mtime 0 tars, seeded pseudo-random contents, fixed gzip level, fixed JSON key order),
// so tests can name digests and a 200 MiB image is built once per machine and cached.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { TESTBED_HOME } from './scratch.js';
import { tarStream, type TarEntry } from './tar.js';

/** OCI media types the builder writes. */
export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/** One file of a layer: fixed text, or `size` seeded pseudo-random bytes. */
export interface FileSpec {
  /** Absolute path in the image, e.g. `/app/hello.txt`; parent directories are added. */
  readonly path: string;
  /** Fixed content (UTF-8); when set, `size` and `seed` are ignored. */
  readonly content?: string;
  /** Number of pseudo-random bytes; default 0. */
  readonly size?: number;
  /** Seed of the random content; default `<image name>:<path>`. Same seed and size, same bytes. */
  readonly seed?: string;
  /** Mode bits; default 0o644. */
  readonly mode?: number;
}

/** One layer: its files, and whether the blob is gzip (level 1) or a plain tar. */
export interface LayerSpec {
  readonly files: readonly FileSpec[];
  /** Default `gzip`. skopeo recompresses `none` layers on push unless digests are preserved. */
  readonly compression?: 'gzip' | 'none';
}

/** One platform of an image; its `layers` come after the image's shared layers. */
export interface PlatformSpec {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  /** Platform-specific layers appended after the shared ones; default none. */
  readonly layers?: readonly LayerSpec[];
}

/** What to build. The whole spec (and nothing else) decides the digests. */
export interface ImageSpec {
  /** Short name, used for default seeds and messages (e.g. `app`). */
  readonly name: string;
  /** The ref name written in `index.json`; default `v1`. */
  readonly tag?: string;
  /** Layers shared by every platform. */
  readonly layers: readonly LayerSpec[];
  /** Default: one linux/amd64 manifest. Two or more platforms give an OCI index. */
  readonly platforms?: readonly PlatformSpec[];
  /** Config `Cmd`; default none. */
  readonly cmd?: readonly string[];
  /** Config `Labels`; default none. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A content descriptor (the subset the test bed uses). */
export interface BlobDescriptor {
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
}

/** What was built for one platform. */
export interface PlatformImage {
  /** `os/architecture[/variant]` */
  readonly platform: string;
  readonly manifestDigest: string;
  readonly manifestSize: number;
  /** The config digest: the CRI `image_ref` / image id of this platform. */
  readonly configDigest: string;
  readonly layerDigests: string[];
  /** sha256 of the uncompressed layer tars, as in the config's `rootfs.diff_ids`. */
  readonly diffIds: string[];
}

/** A built OCI image layout on disk. */
export interface OciLayout {
  /** The layout directory (`oci-layout`, `index.json`, `blobs/sha256/*`). */
  readonly dir: string;
  /** The ref name in `index.json` (use `oci:<dir>:<ref>` with skopeo). */
  readonly ref: string;
  /** The image index digest, when several platforms were built. */
  readonly indexDigest?: string;
  /** The digest a tag resolves to: the index digest, else the only manifest digest. */
  readonly topDigest: string;
  /** Media type of `topDigest`. */
  readonly topMediaType: string;
  /** Manifest digests, one per platform, in platform order. */
  readonly manifestDigests: string[];
  /** Per-platform details, in platform order. */
  readonly images: PlatformImage[];
  /** Every blob of the layout, each once (index, manifests, configs, layers). */
  readonly blobs: BlobDescriptor[];
  /** Total bytes of all blobs. */
  readonly totalSize: number;
}

/** Bump when the builder's output changes for the same spec, so caches are not reused. */
export const BUILDER_VERSION = 2;

/** Default cache root: `<repo>/.testbed/cache/images`. */
export const DEFAULT_IMAGE_CACHE = join(TESTBED_HOME, 'cache', 'images');

const MiB = 1024 * 1024;
const EPOCH = '1970-01-01T00:00:00Z';
const DEFAULT_PLATFORMS: readonly PlatformSpec[] = [{ os: 'linux', architecture: 'amd64' }];
const CHUNK = MiB;

/** The cache key of a spec: sha256 of the builder version and the spec's canonical JSON. */
export function specHash(spec: ImageSpec): string {
  return createHash('sha256')
    .update(JSON.stringify({ builder: BUILDER_VERSION, spec: canonical(spec) }))
    .digest('hex');
}

// Sorted keys, so two equal specs written in a different key order share a cache entry.
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

/**
 * Deterministic pseudo-random bytes: the AES-128-CTR key stream of a key derived from `seed`.
 * Fast (hundreds of MB/s) and identical on every machine.
 */
export function* seededBytes(seed: string, size: number, chunkSize = CHUNK): Generator<Buffer> {
  const key = createHash('sha256').update(`peili-testbed:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(Math.min(chunkSize, Math.max(size, 1)), 0);
  for (let left = size; left > 0; left -= zeros.length) {
    yield cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
  }
}

function platformName(platform: PlatformSpec): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** The tar entries of a layer: parent directories first (each once), then the files in order. */
export function layerEntries(imageName: string, layer: LayerSpec): TarEntry[] {
  const entries: TarEntry[] = [];
  const dirs = new Set<string>();
  for (const file of layer.files) {
    if (!file.path.startsWith('/') || file.path.endsWith('/') || file.path.includes('//')) {
      throw new Error(`image ${imageName}: file path must be absolute and name a file, got "${file.path}"`);
    }
    const parts = file.path.slice(1).split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ path: dir, type: 'directory', size: 0 });
      }
    }
    const path = parts.join('/');
    if (file.content !== undefined) {
      const bytes = Buffer.from(file.content, 'utf8');
      entries.push({ path, type: 'file', mode: file.mode, size: bytes.length, content: () => [bytes] });
    } else {
      const size = file.size ?? 0;
      if (!Number.isSafeInteger(size) || size < 0)
        throw new Error(`image ${imageName}: size of ${file.path} must be a whole number ≥ 0, got ${size}`);
      const seed = file.seed ?? `${imageName}:${file.path}`;
      entries.push({ path, type: 'file', mode: file.mode, size, content: () => seededBytes(seed, size) });
    }
  }
  return entries;
}

class Hashing extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }
}

interface LayerResult {
  readonly descriptor: BlobDescriptor;
  readonly diffId: string;
}

async function writeLayer(blobsDir: string, imageName: string, layer: LayerSpec): Promise<LayerResult> {
  const tmp = join(blobsDir, `.tmp-${randomBytes(6).toString('hex')}`);
  const raw = new Hashing();
  const stored = new Hashing();
  const gzip = (layer.compression ?? 'gzip') === 'gzip';
  const source = tarStream(layerEntries(imageName, layer));
  if (gzip) await pipeline(source, raw, createGzip({ level: 1 }), stored, createWriteStream(tmp));
  else await pipeline(source, raw, stored, createWriteStream(tmp));
  const hex = stored.hash.digest('hex');
  await rename(tmp, join(blobsDir, hex));
  return {
    descriptor: {
      digest: `sha256:${hex}`,
      size: stored.size,
      mediaType: gzip ? MEDIA_TYPES.layerGzip : MEDIA_TYPES.layerTar,
    },
    diffId: `sha256:${raw.hash.digest('hex')}`,
  };
}

async function writeJsonBlob(blobsDir: string, value: unknown, mediaType: string): Promise<BlobDescriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(blobsDir, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length, mediaType };
}

/** Writes the layout for `spec` into the empty directory `dir` (no caching). */
export async function writeLayout(spec: ImageSpec, dir: string): Promise<OciLayout> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const ref = spec.tag ?? 'v1';
  const platforms = spec.platforms ?? DEFAULT_PLATFORMS;
  if (platforms.length === 0) throw new Error(`image ${spec.name}: platforms must not be empty`);
  const blobs = new Map<string, BlobDescriptor>();
  const add = (descriptor: BlobDescriptor): BlobDescriptor => {
    blobs.set(descriptor.digest, descriptor);
    return descriptor;
  };
  // Layers equal in spec are built once, which is what makes platforms share them.
  const layerCache = new Map<string, Promise<LayerResult>>();
  const buildLayer = (layer: LayerSpec): Promise<LayerResult> => {
    const key = JSON.stringify(canonical(layer));
    let pending = layerCache.get(key);
    if (!pending) {
      pending = writeLayer(blobsDir, spec.name, layer);
      layerCache.set(key, pending);
    }
    return pending;
  };

  const images: PlatformImage[] = [];
  const manifestDescriptors: (BlobDescriptor & { platform: Record<string, string> })[] = [];
  for (const platform of platforms) {
    const layers: LayerResult[] = [];
    for (const layer of [...spec.layers, ...(platform.layers ?? [])]) layers.push(await buildLayer(layer));
    for (const layer of layers) add(layer.descriptor);
    const config = add(
      await writeJsonBlob(
        blobsDir,
        {
          created: EPOCH,
          architecture: platform.architecture,
          ...(platform.variant ? { variant: platform.variant } : {}),
          os: platform.os,
          config: {
            Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
            ...(spec.cmd ? { Cmd: [...spec.cmd] } : {}),
            ...(spec.labels ? { Labels: canonical(spec.labels) } : {}),
          },
          rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
          history: layers.map((_, i) => ({
            created: EPOCH,
            created_by: `peili testbed: ${spec.name} layer ${i}`,
          })),
        },
        MEDIA_TYPES.config,
      ),
    );
    const manifest = add(
      await writeJsonBlob(
        blobsDir,
        {
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.manifest,
          config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
          layers: layers.map(({ descriptor }) => ({
            mediaType: descriptor.mediaType,
            digest: descriptor.digest,
            size: descriptor.size,
          })),
        },
        MEDIA_TYPES.manifest,
      ),
    );
    manifestDescriptors.push({
      ...manifest,
      platform: {
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
      },
    });
    images.push({
      platform: platformName(platform),
      manifestDigest: manifest.digest,
      manifestSize: manifest.size,
      configDigest: config.digest,
      layerDigests: layers.map((layer) => layer.descriptor.digest),
      diffIds: layers.map((layer) => layer.diffId),
    });
  }

  let top: BlobDescriptor;
  let indexDigest: string | undefined;
  if (platforms.length > 1) {
    top = add(
      await writeJsonBlob(
        blobsDir,
        {
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.index,
          manifests: manifestDescriptors.map((m) => ({
            mediaType: m.mediaType,
            digest: m.digest,
            size: m.size,
            platform: m.platform,
          })),
        },
        MEDIA_TYPES.index,
      ),
    );
    indexDigest = top.digest;
  } else {
    top = manifestDescriptors[0]!;
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [
        {
          mediaType: top.mediaType,
          digest: top.digest,
          size: top.size,
          annotations: { 'org.opencontainers.image.ref.name': ref },
        },
      ],
    }),
  );
  const all = [...blobs.values()];
  return {
    dir,
    ref,
    ...(indexDigest ? { indexDigest } : {}),
    topDigest: top.digest,
    topMediaType: top.mediaType,
    manifestDigests: images.map((image) => image.manifestDigest),
    images,
    blobs: all,
    totalSize: all.reduce((sum, blob) => sum + blob.size, 0),
  };
}

const META_FILE = 'testbed-layout.json';

/**
 * Builds the OCI layout of `spec`, or returns the cached one: layouts live in
 * `<cacheDir>/<specHash>` (default {@link DEFAULT_IMAGE_CACHE}) and are never modified once
 * written, so callers may read them but must not write into them.
 */
export function buildImage(spec: ImageSpec, cacheDir: string = DEFAULT_IMAGE_CACHE): Promise<OciLayout> {
  const dir = join(cacheDir, specHash(spec));
  // One build per layout within this process, however many callers ask at once.
  let pending = building.get(dir);
  if (!pending) {
    pending = buildCached(spec, cacheDir, dir).finally(() => building.delete(dir));
    building.set(dir, pending);
  }
  return pending;
}

const building = new Map<string, Promise<OciLayout>>();
const LOCK_WAIT_MS = 5 * 60 * 1000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Across processes (test files run in parallel), a lock file holding the builder's PID makes the
// others wait for its result instead of building a 200 MiB image twice on a 2-core machine.
async function buildCached(spec: ImageSpec, cacheDir: string, dir: string): Promise<OciLayout> {
  const cached = await readCached(dir);
  if (cached) return cached;
  await mkdir(cacheDir, { recursive: true });
  const lock = `${dir}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(await readFile(lock, 'utf8').catch(() => ''));
    if (!Number.isInteger(owner) || owner <= 0 || !pidAlive(owner)) {
      // A builder that died (or a lock still being written: it is retried once it has a PID).
      if (Number.isInteger(owner) && owner > 0) await rm(lock, { force: true });
      await new Promise((resolve) => setTimeout(resolve, 50));
    } else {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const done = await readCached(dir);
    if (done) return done;
    if (Date.now() > deadline)
      throw new Error(`buildImage ${spec.name}: waited ${LOCK_WAIT_MS} ms for the build held by ${lock}`);
  }
  try {
    const done = await readCached(dir);
    if (done) return done;
    // Build beside the final place and rename: a reader never sees a half-written layout.
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      const layout = await writeLayout(spec, tmp);
      const { dir: _dir, ...meta } = layout;
      await writeFile(join(tmp, META_FILE), JSON.stringify(meta));
      try {
        await rename(tmp, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  } finally {
    await rm(lock, { force: true });
  }
  const built = await readCached(dir);
  if (!built) throw new Error(`buildImage ${spec.name}: layout missing in ${dir} after build`);
  return built;
}

async function readCached(dir: string): Promise<OciLayout | undefined> {
  try {
    const meta = JSON.parse(await readFile(join(dir, META_FILE), 'utf8')) as Omit<OciLayout, 'dir'>;
    return { ...meta, dir };
  } catch {
    return undefined;
  }
}

/**
 * An image of about `totalMiB` MiB of random bytes split evenly over `layers` gzip layers (the
 * benchmark images: `sizedImage(10, 1)`, `sizedImage(100, 4)`).
 */
export function sizedImage(
  totalMiB: number,
  layers: number,
  options: { compression?: 'gzip' | 'none'; tag?: string } = {},
): ImageSpec {
  if (!(totalMiB > 0)) throw new Error(`sizedImage: totalMiB must be > 0, got ${totalMiB}`);
  if (!Number.isInteger(layers) || layers < 1)
    throw new Error(`sizedImage: layers must be a whole number ≥ 1, got ${layers}`);
  const total = Math.round(totalMiB * MiB);
  const per = Math.floor(total / layers);
  const name = `sized-${totalMiB}m-${layers}l`;
  return {
    name,
    ...(options.tag ? { tag: options.tag } : {}),
    layers: Array.from({ length: layers }, (_, i) => ({
      ...(options.compression ? { compression: options.compression } : {}),
      files: [{ path: `/data/layer-${i}.bin`, size: i === layers - 1 ? total - per * (layers - 1) : per }],
    })),
  };
}

/** Ready-made images for tests, the demo and the benchmarks. */
export const IMAGES = {
  /** ~1 MiB in 3 gzip layers, linux/amd64; `Cmd` is `/app/hello.txt`. */
  app: {
    name: 'app',
    cmd: ['/app/hello.txt'],
    layers: [
      {
        files: [
          { path: '/app/hello.txt', content: 'hello from peili\n' },
          { path: '/app/data.bin', size: 512 * 1024 },
        ],
      },
      {
        files: [
          { path: '/etc/app.conf', content: 'greeting = "hello"\n' },
          { path: '/etc/app.bin', size: 256 * 1024 },
        ],
      },
      { files: [{ path: '/srv/assets.bin', size: 256 * 1024 }] },
    ],
  },
  /** An OCI index of linux/amd64 and linux/arm64: two shared layers plus one small layer per arch. */
  multi: {
    name: 'multi',
    layers: [
      { files: [{ path: '/usr/share/multi/common.bin', size: 256 * 1024 }] },
      { files: [{ path: '/etc/multi.conf', content: 'shared = true\n' }] },
    ],
    platforms: [
      {
        os: 'linux',
        architecture: 'amd64',
        layers: [
          {
            files: [
              { path: '/etc/arch', content: 'amd64\n' },
              { path: '/opt/arch.bin', size: 64 * 1024, seed: 'multi:amd64' },
            ],
          },
        ],
      },
      {
        os: 'linux',
        architecture: 'arm64',
        layers: [
          {
            files: [
              { path: '/etc/arch', content: 'arm64\n' },
              { path: '/opt/arch.bin', size: 64 * 1024, seed: 'multi:arm64' },
            ],
          },
        ],
      },
    ],
  },
  /** ~200 MiB: one gzip layer holding one file of random bytes (gzip ≈ raw size). */
  big: {
    name: 'big',
    layers: [{ files: [{ path: '/data/big.bin', size: 200 * MiB }] }],
  },
} as const satisfies Record<string, ImageSpec>;
