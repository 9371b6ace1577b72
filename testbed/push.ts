// Pushes a built OCI layout to a registry with skopeo, the way a CI pipeline would.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { OciLayout } from './images.js';

const execFileAsync = promisify(execFile);

/** Options of {@link pushImage}. */
export interface PushOptions {
  /** Copy every platform of an index (`--all`); default: true when the layout has an index. */
  readonly all?: boolean;
  /**
   * Keep the layout's digests (`--preserve-digests`); default true, so the registry holds exactly
   * the digests the layout reports (skopeo would otherwise gzip uncompressed layers).
   */
  readonly preserveDigests?: boolean;
  /** Kills skopeo after this long; default 120000 ms. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** The skopeo arguments {@link pushImage} runs. */
export function pushArgs(layout: OciLayout, target: string, options: PushOptions = {}): string[] {
  if (target.includes('://'))
    throw new Error(`pushImage: target must be host:port/repository:tag without a scheme, got "${target}"`);
  return [
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    ...((options.all ?? layout.indexDigest !== undefined) ? ['--all'] : []),
    ...((options.preserveDigests ?? true) ? ['--preserve-digests'] : []),
    `oci:${layout.dir}:${layout.ref}`,
    `docker://${target}`,
  ];
}

/** Pushes `layout` to `target` (e.g. `127.0.0.1:5000/test/app:v1`) over plain HTTP. */
export async function pushImage(layout: OciLayout, target: string, options: PushOptions = {}): Promise<void> {
  const args = pushArgs(layout, target, options);
  try {
    await execFileAsync('skopeo', args, {
      timeout: options.timeoutMs ?? 120000,
      signal: options.signal,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const failure = err as Error & { stderr?: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${failure.stderr?.trim() || failure.message}`, {
      cause: err,
    });
  }
}
