import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTar, tarHeader, tarStream, type TarEntry } from './tar.js';

const file = (path: string, text: string): TarEntry => ({
  path,
  type: 'file',
  size: Buffer.byteLength(text),
  content: () => [Buffer.from(text)],
});

describe('tarStream', () => {
  it('round-trips files and directories with 512-byte padding and two closing blocks', () => {
    const archive = Buffer.concat([
      ...tarStream([
        { path: 'd/', type: 'directory', size: 0 },
        file('d/a.txt', 'hello'),
        file('d/empty', ''),
      ]),
    ]);
    // 3 headers + 1 content block + 2 zero blocks
    assert.equal(archive.length, 6 * 512);
    assert.deepEqual(
      parseTar(archive).map((e) => [e.path, e.type, e.mode, e.mtime, e.content.toString()]),
      [
        ['d/', 'directory', 0o755, 0, ''],
        ['d/a.txt', 'file', 0o644, 0, 'hello'],
        ['d/empty', 'file', 0o644, 0, ''],
      ],
    );
  });

  it('splits a long path into the ustar prefix and name fields', () => {
    const path = `${'p'.repeat(120)}/${'n'.repeat(90)}`;
    const [entry] = parseTar(Buffer.concat([...tarStream([file(path, 'x')])]));
    assert.equal(entry?.path, path);
  });

  it('rejects content whose length differs from the declared size', () => {
    const entry: TarEntry = { path: 'f', type: 'file', size: 4, content: () => [Buffer.from('abc')] };
    assert.throws(() => [...tarStream([entry])], { message: 'tar: f produced 3 bytes, expected 4' });
  });
});

describe('tarHeader', () => {
  it('rejects a path that fits neither the name nor the prefix field', () => {
    const path = 'x'.repeat(101);
    assert.throws(() => tarHeader({ path, type: 'file', size: 0 }), {
      message: `tar: path "${path}" is too long for ustar`,
    });
  });

  it('writes a checksum that parseTar verifies, and parseTar rejects a corrupted one', () => {
    const header = tarHeader({ path: 'a', type: 'file', size: 0 });
    const archive = Buffer.concat([header, Buffer.alloc(1024)]);
    assert.equal(parseTar(archive).length, 1);
    archive[0] = 'b'.charCodeAt(0);
    assert.throws(() => parseTar(archive), { message: 'tar: bad header checksum at offset 0' });
  });
});
