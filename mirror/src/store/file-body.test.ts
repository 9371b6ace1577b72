import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileBody } from './file-body.js';

const HOST = '127.0.6.91';
const MiB = 1024 * 1024;

describe('FileBody', () => {
  let dir: string;
  let path: string;
  const content = randomBytes(5 * MiB + 123);
  let server: Server;
  let base: string;
  /** What each request does with its response: set per test. */
  let handler: (res: ServerResponse) => Promise<void>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'peili-file-body-'));
    path = join(dir, 'blob');
    writeFileSync(path, content);
    server = createServer((_req, res) => void handler(res));
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    base = `http://${HOST}:${(server.address() as { port: number }).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Serves bytes [start, end) of the file with `sendTo`; resolves with the body once it is sent or failed. */
  const serve = (start: number, end: number): Promise<{ body: FileBody; counted: number[] }> =>
    new Promise((resolve) => {
      handler = async (res) => {
        const body = new FileBody(await open(path), start, end);
        const counted: number[] = [];
        res.writeHead(200, { 'content-length': end - start });
        body.sendTo(res, (n) => counted.push(n));
        resolve({ body, counted });
      };
    });

  const download = (): Promise<{ bytes: Buffer; complete: boolean }> =>
    new Promise((resolve) => {
      const req = get(base, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ bytes: Buffer.concat(chunks), complete: res.complete }));
        res.on('error', () => resolve({ bytes: Buffer.concat(chunks), complete: false }));
      });
      // Cut before the headers arrived.
      req.on('error', () => resolve({ bytes: Buffer.alloc(0), complete: false }));
    });

  const closed = (body: FileBody): Promise<void> =>
    body.closed ? Promise.resolve() : new Promise((resolve) => body.once('close', () => resolve()));

  for (const [start, end] of [
    [0, content.length],
    [0, 0],
    [7, 7 + 1],
    [MiB - 1, 3 * MiB + 2],
    [content.length - 10, content.length],
  ] as const) {
    it(`sends bytes [${start}, ${end}) exactly, counts them and closes the file`, async () => {
      const served = serve(start, end);
      const { bytes, complete } = await download();
      const { body, counted } = await served;
      assert.equal(complete, true);
      assert.ok(bytes.equals(content.subarray(start, end)));
      assert.equal(
        counted.reduce((a, b) => a + b, 0),
        end - start,
      );
      await closed(body);
    });
  }

  it('reads the same bytes as a Readable (for consumers other than HTTP)', async () => {
    const body = new FileBody(await open(path), 10, 2 * MiB + 10);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    assert.ok(Buffer.concat(chunks).equals(content.subarray(10, 2 * MiB + 10)));
  });

  it('cuts the response when the file turns out shorter than announced', async () => {
    const short = join(dir, 'short');
    writeFileSync(short, content);
    handler = async (res) => {
      const body = new FileBody(await open(short), 0, content.length);
      truncateSync(short, 2 * MiB); // garbage-collected under our feet
      res.writeHead(200, { 'content-length': content.length });
      body.sendTo(res, () => {});
    };
    const { bytes, complete } = await download();
    assert.equal(complete, false);
    assert.ok(bytes.length <= 2 * MiB);
  });

  it('stops reading and closes the file when the client goes away', async () => {
    const served = serve(0, content.length);
    await new Promise<void>((resolve) => {
      const req = get(base, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
    });
    const { body } = await served;
    await closed(body);
    assert.ok(body.remaining > 0, 'the rest of the file was never read');
  });

  it('reads ahead of a client that does not read by at most three chunks plus the socket buffers', async () => {
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(64 * MiB, 1));
    const served = new Promise<FileBody>((resolve) => {
      handler = async (res) => {
        const body = new FileBody(await open(big), 0, 64 * MiB);
        res.writeHead(200, { 'content-length': 64 * MiB });
        body.sendTo(res, () => {});
        resolve(body);
      };
    });
    const req = get(base, (res) => res.pause());
    req.on('error', () => {});
    const body = await served;
    await sleep(300);
    const read = 64 * MiB - body.remaining;
    req.destroy();
    await closed(body);
    // Loopback socket buffers hold a few MiB at most; without the bound the whole file is read.
    assert.ok(read < 16 * MiB, `${read} bytes read for a client that read nothing`);
  });

  it('ends the response when the body is destroyed from outside while sending', async () => {
    const served = new Promise<FileBody>((resolve) => {
      handler = async (res) => {
        const body = new FileBody(await open(path), 0, content.length);
        res.writeHead(200, { 'content-length': content.length });
        body.sendTo(res, () => {});
        body.destroy(new Error('request aborted'));
        resolve(body);
      };
    });
    const { complete } = await download();
    await served;
    assert.equal(complete, false);
  });
});
