// The CRI client against an in-process gRPC server built from the same proto: message mapping,
// errors and cancellation, with no containerd.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCriClient, CRI_PROTO_PATH, type CriClient } from './cri-client.js';

type Handler = (
  call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
  callback: grpc.sendUnaryData<unknown>,
) => void;
type ServiceDef = { service: grpc.ServiceDefinition };

const requests: { method: string; request: Record<string, unknown> }[] = [];
let dir: string;
let server: grpc.Server;
let client: CriClient;

const image = {
  id: 'sha256:c0',
  repo_tags: ['docker.io/library/app:v1'],
  repo_digests: ['docker.io/library/app@sha256:m0'],
  size: '1051063',
};

function record(method: string, reply: (request: Record<string, unknown>) => unknown): Handler {
  return (call, callback) => {
    requests.push({ method, request: call.request });
    const value = reply(call.request);
    if (value instanceof Error) callback({ code: grpc.status.NOT_FOUND, details: value.message });
    else if (value !== undefined) callback(null, value);
    // undefined: never answer, like a pull stuck on a silent mirror.
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peili-cri-test-'));
  const definition = protoLoader.loadSync(CRI_PROTO_PATH, { keepCase: true, longs: String, defaults: true });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: { v1: { ImageService: ServiceDef; RuntimeService: ServiceDef } };
  };
  server = new grpc.Server();
  server.addService(root.runtime.v1.ImageService.service, {
    PullImage: record('PullImage', (req) => {
      const ref = (req.image as { image: string }).image;
      return ref === 'hang' ? undefined : { image_ref: `sha256:config-of-${ref}` };
    }),
    ListImages: record('ListImages', () => ({ images: [image] })),
    ImageStatus: record('ImageStatus', (req) =>
      (req.image as { image: string }).image === 'known' ? { image } : {},
    ),
    RemoveImage: record('RemoveImage', () => new Error('boom')),
  });
  server.addService(root.runtime.v1.RuntimeService.service, {
    Version: record('Version', () => ({
      version: '0.1.0',
      runtime_name: 'fake',
      runtime_version: '9',
      runtime_api_version: 'v1',
    })),
  });
  const socket = join(dir, 'cri.sock');
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  client = createCriClient(socket, { timeoutMs: 5000 });
});

after(async () => {
  client?.close();
  server?.forceShutdown();
  await rm(dir, { recursive: true, force: true });
});

describe('createCriClient', () => {
  it('pulls by ImageSpec.image and returns image_ref', async () => {
    assert.equal(
      await client.pullImage('docker.io/library/app:v1'),
      'sha256:config-of-docker.io/library/app:v1',
    );
    assert.deepEqual(requests.at(-1), {
      method: 'PullImage',
      request: { image: { image: 'docker.io/library/app:v1', annotations: {} }, auth: null },
    });
  });

  it('lists images with and without a filter, sizes as numbers', async () => {
    const expected = [
      { id: 'sha256:c0', repoTags: image.repo_tags, repoDigests: image.repo_digests, size: 1051063 },
    ];
    assert.deepEqual(await client.listImages(), expected);
    assert.deepEqual(requests.at(-1)?.request, { filter: null });
    assert.deepEqual(await client.listImages('app:v1'), expected);
    assert.deepEqual(requests.at(-1)?.request, { filter: { image: { image: 'app:v1', annotations: {} } } });
  });

  it('reports an unknown image as undefined in ImageStatus', async () => {
    assert.equal((await client.imageStatus('known'))?.id, 'sha256:c0');
    assert.equal(await client.imageStatus('unknown'), undefined);
  });

  it('maps Version', async () => {
    assert.deepEqual(await client.version(), {
      version: '0.1.0',
      runtimeName: 'fake',
      runtimeVersion: '9',
      runtimeApiVersion: 'v1',
    });
  });

  it('rejects with the method and the server details', async () => {
    await assert.rejects(client.removeImage('x'), { message: 'CRI RemoveImage: boom' });
  });

  it('cancels a call through its AbortSignal, and refuses an aborted one', async () => {
    await assert.rejects(client.pullImage('hang', AbortSignal.timeout(100)), {
      message: 'CRI PullImage: Cancelled on client',
    });
    const aborted = AbortSignal.abort(new Error('stop now'));
    await assert.rejects(client.pullImage('x', aborted), { message: 'stop now' });
  });
});
