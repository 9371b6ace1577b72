// Deterministic layer tars through tar-stream: regular files and directories only, mtime 0,
// uid/gid 0, entries in the order given. Streamed, so a 200 MiB layer never sits in memory.
import { once } from 'node:events';
import { Readable } from 'node:stream';
import tar, { type Header } from 'tar-stream';

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

/** The tar-stream header of an entry: every field that could vary between builds pinned. */
function headerOf(entry: TarEntry): Partial<Header> & Pick<Header, 'name'> {
  return {
    name: entry.path,
    type: entry.type,
    mode: entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644),
    size: entry.type === 'directory' ? 0 : entry.size,
    // mtime 0 and fixed owners keep layers reproducible.
    mtime: new Date(0),
    uid: 0,
    gid: 0,
    uname: 'root',
    gname: 'root',
  };
}

async function pack(entries: Iterable<TarEntry>, archive: tar.Pack): Promise<void> {
  for (const entry of entries) {
    const header = headerOf(entry);
    if (entry.type !== 'file' || entry.size === 0) {
      // An empty buffer: without one, tar-stream waits for a file's content to be written.
      archive.entry(header, Buffer.alloc(0));
      continue;
    }
    let written = 0;
    const done = new Promise<void>((resolve, reject) => {
      const sink = archive.entry(header, (error) => (error ? reject(error) : resolve()));
      // Its errors arrive through the callback above.
      sink.on('error', () => {});
      void (async () => {
        for (const chunk of entry.content?.() ?? []) {
          written += chunk.length;
          if (written > entry.size) break;
          if (!sink.write(chunk)) await once(sink, 'drain');
        }
        if (written !== entry.size) {
          const error = new Error(`tar: ${entry.path} produced ${written} bytes, expected ${entry.size}`);
          reject(error);
          return;
        }
        sink.end(Buffer.alloc(0));
      })().catch(reject);
    });
    await done;
  }
  archive.finalize();
}

/** Streams a whole tar archive (ustar; PAX headers only for paths ustar cannot hold). */
export function tarStream(entries: Iterable<TarEntry>): Readable {
  const archive = tar.pack();
  pack(entries, archive).catch((error: unknown) => archive.destroy(error as Error));
  return Readable.from(archive);
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

/** Parses a tar archive held in memory; rejects on a malformed header. */
export async function parseTar(archive: Buffer): Promise<ParsedTarEntry[]> {
  const entries: ParsedTarEntry[] = [];
  const extract = tar.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const { header } = entry;
      entries.push({
        path: header.type === 'directory' && !header.name.endsWith('/') ? `${header.name}/` : header.name,
        type: header.type === 'directory' ? 'directory' : header.type === 'file' ? 'file' : 'other',
        mode: header.mode ?? 0,
        mtime: (header.mtime?.getTime() ?? 0) / 1000,
        size: header.size ?? 0,
        content: Buffer.concat(chunks),
      });
    }
  })();
  extract.end(archive);
  await reading;
  return entries;
}
