// A minimal, deterministic ustar writer: regular files and directories only, mtime 0, uid/gid 0,
// entries in the order given. Enough for image layers; streamed so a 200 MiB layer never sits
// in memory.

/** One entry of a layer tar. */
export interface TarEntry {
  /** Path inside the layer, without a leading slash (`app/hello.txt`, `app/`). */
  readonly path: string;
  readonly type: 'file' | 'directory';
  /** File mode bits; default 0o644 for files, 0o755 for directories. */
  readonly mode?: number;
  /** File size in bytes (0 for directories). */
  readonly size: number;
  /** Produces exactly `size` bytes of content, in chunks. */
  readonly content?: () => Iterable<Buffer>;
}

const BLOCK = 512;

function writeString(header: Buffer, value: string, offset: number, length: number, what: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar: ${what} "${value}" is longer than ${length} bytes`);
  bytes.copy(header, offset);
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
  // length-1 octal digits then a NUL, the classic ustar encoding.
  const digits = value.toString(8).padStart(length - 1, '0');
  if (digits.length > length - 1) throw new Error(`tar: value ${value} does not fit in ${length} bytes`);
  header.write(`${digits}\0`, offset, length, 'ascii');
}

// ustar keeps names up to 100 bytes, or 255 with the 155-byte prefix field split at a slash.
function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0)
      return { name, prefix };
  }
  throw new Error(`tar: path "${path}" is too long for ustar`);
}

/** The 512-byte ustar header of an entry. */
export function tarHeader(entry: TarEntry): Buffer {
  const header = Buffer.alloc(BLOCK, 0);
  const { name, prefix } = splitName(entry.path);
  writeString(header, name, 0, 100, 'name');
  writeOctal(header, entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644), 100, 8);
  writeOctal(header, 0, 108, 8); // uid
  writeOctal(header, 0, 116, 8); // gid
  writeOctal(header, entry.type === 'directory' ? 0 : entry.size, 124, 12);
  writeOctal(header, 0, 136, 12); // mtime: 0 keeps layers reproducible
  header.fill(0x20, 148, 156); // checksum is computed with this field as spaces
  header.write(entry.type === 'directory' ? '5' : '0', 156, 1, 'ascii');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  writeString(header, 'root', 265, 32, 'uname');
  writeString(header, 'root', 297, 32, 'gname');
  writeString(header, prefix, 345, 155, 'prefix');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return header;
}

/** Streams a whole tar archive: headers, contents, padding and the two closing zero blocks. */
export function* tarStream(entries: Iterable<TarEntry>): Generator<Buffer> {
  for (const entry of entries) {
    yield tarHeader(entry);
    if (entry.type !== 'file' || entry.size === 0) continue;
    let written = 0;
    for (const chunk of entry.content?.() ?? []) {
      written += chunk.length;
      yield chunk;
    }
    if (written !== entry.size)
      throw new Error(`tar: ${entry.path} produced ${written} bytes, expected ${entry.size}`);
    const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad, 0);
  }
  yield Buffer.alloc(2 * BLOCK, 0);
}

/** A parsed tar entry (for tests and checks): path, type, size and content. */
export interface ParsedTarEntry {
  readonly path: string;
  readonly type: 'file' | 'directory' | 'other';
  readonly mode: number;
  readonly mtime: number;
  readonly size: number;
  readonly content: Buffer;
}

/** Parses a ustar archive held in memory; throws on a bad header checksum. */
export function parseTar(archive: Buffer): ParsedTarEntry[] {
  const entries: ParsedTarEntry[] = [];
  let offset = 0;
  const field = (start: number, length: number): string =>
    archive
      .subarray(offset + start, offset + start + length)
      .toString('utf8')
      .replace(/\0.*$/s, '');
  const octal = (start: number, length: number): number => parseInt(field(start, length).trim() || '0', 8);
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (sum !== octal(148, 8)) throw new Error(`tar: bad header checksum at offset ${offset}`);
    const name = field(0, 100);
    const prefix = field(345, 155);
    const size = octal(124, 12);
    const flag = field(156, 1);
    const start = offset + BLOCK;
    entries.push({
      path: prefix ? `${prefix}/${name}` : name,
      type: flag === '5' ? 'directory' : flag === '0' || flag === '' ? 'file' : 'other',
      mode: octal(100, 8),
      mtime: octal(136, 12),
      size,
      content: Buffer.from(archive.subarray(start, start + size)),
    });
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}
