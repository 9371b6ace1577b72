/** Manifest and index media types the mirror recognises (OCI and Docker v2 schema 2). */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  /** The Content-Type of every blob response. */
  octetStream: 'application/octet-stream',
} as const;

/** The four manifest media types containerd asks for. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList,
];

/** True for the media types of an index or manifest list (documents that point at manifests). */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociIndex || mediaType === MediaTypes.dockerManifestList;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The media type of a manifest document: its `mediaType` field when present, else an OCI index
 * when it has `manifests`, else an OCI manifest when it has `config` and `layers`. Undefined when
 * the bytes are not a JSON object or none of these apply (not a manifest we can serve).
 */
export function detectManifestMediaType(bytes: Uint8Array): string | undefined {
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isRecord(document)) return undefined;
  const { mediaType } = document;
  if (typeof mediaType === 'string' && mediaType.length > 0) return mediaType;
  if (Array.isArray(document['manifests'])) return MediaTypes.ociIndex;
  if (isRecord(document['config']) && Array.isArray(document['layers'])) return MediaTypes.ociManifest;
  return undefined;
}
