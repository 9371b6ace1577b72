// A peer serving a corrupt blob, as containerd meets it: the first download is cut before its
// last bytes, containerd resumes it with `Range: bytes=<n>-` and, the commit failing, pulls again.
// Neither the resume nor the retry may reach the same corrupt copy, even when it is the only holder
// (a plain cool-down would let a lone holder be asked again, and the image could never be pulled).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { LookupOptions, PeerLocation, Router } from '../routing/router.js';
import type { Digest } from '../store/content-store.js';
import { ManualClock } from '../../test-support/manual-clock.js';
import { createPeerSource } from './peer-fetch.js';

const BLOB = Buffer.alloc(300_000, 3);
const DIGEST: Digest = `sha256:${createHash('sha256').update(BLOB).digest('hex')}`;

/** A real HTTP peer holding the blob, corrupt (one byte flipped) or intact; records each request. */
async function startPeer(host: string, corrupt: boolean): Promise<PeerLocation & { requests: string[] }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.headers.range ?? 'full'}`);
    const body = Buffer.from(BLOB);
    if (corrupt) body[body.length >> 1]! ^= 0xff;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, {
      'content-length': body.length - start,
      ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body.subarray(start));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as { port: number };
  return { id: `${host}:${port}`, registryUrl: `http://${host}:${port}`, requests };
}

function router(holders: PeerLocation[]): Router {
  return {
    ready: () => true,
    async *lookup(_key: string, _options: LookupOptions) {
      yield* holders;
    },
    advertise: async () => {},
    withdraw: async () => {},
  };
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const request = { registry: 'docker.io', repository: 'library/app', digest: DIGEST };
const signal = (): AbortSignal => AbortSignal.timeout(10_000);

describe('peer fetch with a corrupt holder (containerd resumes and retries)', () => {
  it('never asks the only holder again for a digest it served corrupt: resume and retry miss', async () => {
    const bad = await startPeer('127.0.42.1', true);
    const clock = new ManualClock();
    const source = createPeerSource({ router: router([bad]), clock }, { coolDownBase: 10 });
    const first = await source.blob(request, signal());
    assert.ok(first);
    await assert.rejects(collect(first.stream), {
      message: `blob ${DIGEST} from peers does not match its digest`,
    });
    // containerd's resume of the cut download, then its fresh retry, then a HEAD: all misses.
    clock.advance(50); // past the 10 ms cool-down
    assert.equal(await source.blob({ ...request, range: { start: 250_000 } }, signal()), undefined);
    assert.equal(await source.blob(request, signal()), undefined);
    assert.equal(await source.blobSize(request, signal()), undefined);
    assert.deepEqual(bad.requests, ['GET full']);
  });

  it('sends the retry to an intact holder and completes with the right bytes', async () => {
    const bad = await startPeer('127.0.42.2', true);
    const good = await startPeer('127.0.42.3', false);
    const clock = new ManualClock();
    const source = createPeerSource({ router: router([bad, good]), clock }, { coolDownBase: 10 });
    // The lookup lists the corrupt holder first, so the first attempt goes to it.
    const first = await source.blob(request, signal());
    assert.ok(first);
    assert.equal(first.peerId, bad.id);
    await assert.rejects(collect(first.stream));
    clock.advance(50); // past the 10 ms cool-down
    const retry = await source.blob(request, signal());
    assert.ok(retry);
    assert.equal(retry.peerId, good.id);
    assert.ok((await collect(retry.stream)).equals(BLOB));
    assert.deepEqual(bad.requests, ['GET full']);
  });
});
