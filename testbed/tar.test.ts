import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { parseTar, tarStream, type TarEntry } from './tar.js';

const file = (path: string, text: string): TarEntry => ({
  path,
  type: 'file',
  size: Buffer.byteLength(text),
  content: () => [Buffer.from(text)],
});

describe('tarStream', () => {
  it('round-trips files and directories with 512-byte padding and two closing blocks', async () => {
    const archive = await buffer(
      tarStream([{ path: 'd/', type: 'directory', size: 0 }, file('d/a.txt', 'hello'), file('d/empty', '')]),
    );
    // 3 headers + 1 content block + 2 zero blocks
    assert.equal(archive.length, 6 * 512);
    assert.deepEqual(
      (await parseTar(archive)).map((e) => [e.path, e.type, e.mode, e.mtime, e.content.toString()]),
      [
        ['d/', 'directory', 0o755, 0, ''],
        ['d/a.txt', 'file', 0o644, 0, 'hello'],
        ['d/empty', 'file', 0o644, 0, ''],
      ],
    );
  });

  it('is byte-for-byte reproducible', async () => {
    const entries = (): TarEntry[] => [{ path: 'd/', type: 'directory', size: 0 }, file('d/a.txt', 'hello')];
    const digest = async (): Promise<string> =>
      createHash('sha256')
        .update(await buffer(tarStream(entries())))
        .digest('hex');
    assert.equal(await digest(), await digest());
  });

  it('keeps a long path whole (ustar prefix and name fields)', async () => {
    const path = `${'p'.repeat(120)}/${'n'.repeat(90)}`;
    const [entry] = await parseTar(await buffer(tarStream([file(path, 'x')])));
    assert.equal(entry?.path, path);
  });

  it('streams content larger than its buffers, honouring backpressure', async () => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    const entry: TarEntry = {
      path: 'big',
      type: 'file',
      size: 64 * chunk.length,
      content: () => Array(64).fill(chunk),
    };
    const [parsed] = await parseTar(await buffer(tarStream([entry])));
    assert.equal(parsed?.size, entry.size);
    assert.ok(parsed?.content.equals(Buffer.concat(Array(64).fill(chunk))));
  });

  it('rejects content whose length differs from the declared size', async () => {
    const entry: TarEntry = { path: 'f', type: 'file', size: 4, content: () => [Buffer.from('abc')] };
    await assert.rejects(buffer(tarStream([entry])), { message: 'tar: f produced 3 bytes, expected 4' });
  });
});

describe('parseTar', () => {
  it('rejects a corrupted header', async () => {
    const archive = await buffer(tarStream([file('a', '')]));
    archive[0] = 'b'.charCodeAt(0);
    await assert.rejects(parseTar(archive));
  });
});
