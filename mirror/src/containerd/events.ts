import { isDigest } from '../oci/digest.js';
import type { StoreEvent } from '../store/content-store.js';

/** Event payload type names (containerd's `type_url`s carry no `types.googleapis.com/` prefix). */
export const EVENT_TYPES = {
  imageCreate: 'containerd.services.images.v1.ImageCreate',
  imageUpdate: 'containerd.services.images.v1.ImageUpdate',
  imageDelete: 'containerd.services.images.v1.ImageDelete',
  contentCreate: 'containerd.events.ContentCreate',
  contentDelete: 'containerd.events.ContentDelete',
} as const;

/**
 * The `Events.Subscribe` filters for one namespace: image and content topics only. Filters in the
 * list are alternatives; within one, comma-joined selectors must all match (containerd 1.6+ syntax,
 * `~=` is a regular-expression match).
 */
export function subscribeFilters(namespace: string): string[] {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(namespace))
    throw new TypeError(`invalid containerd namespace "${namespace}"`);
  return [`namespace==${namespace},topic~="^/images/"`, `namespace==${namespace},topic~="^/content/"`];
}

/**
 * Turns one event payload into a StoreEvent: undefined for types the mirror does not follow or for
 * payloads without a usable name/digest; throws on bytes that are not a protobuf message.
 * Accepts type URLs with or without a `…/` prefix so a future containerd adding one still works.
 */
export function decodeEvent(typeUrl: string, value: Uint8Array): StoreEvent | undefined {
  const type = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  switch (type) {
    case EVENT_TYPES.imageCreate:
    case EVENT_TYPES.imageUpdate:
    case EVENT_TYPES.imageDelete: {
      const { strings } = readFields(value);
      const name = strings.get(1) ?? '';
      if (name === '') return undefined;
      if (type === EVENT_TYPES.imageDelete) return { kind: 'image-delete', name };
      return { kind: type === EVENT_TYPES.imageCreate ? 'image-create' : 'image-update', name };
    }
    case EVENT_TYPES.contentCreate:
    case EVENT_TYPES.contentDelete: {
      const { strings, varints } = readFields(value);
      const digest = strings.get(1) ?? '';
      if (!isDigest(digest)) return undefined;
      if (type === EVENT_TYPES.contentDelete) return { kind: 'content-delete', digest };
      const size = varints.get(2);
      return size === undefined
        ? { kind: 'content-create', digest }
        : { kind: 'content-create', digest, size };
    }
    default:
      return undefined;
  }
}

/**
 * A deliberately tiny protobuf reader: the event payloads are flat messages of a string (field 1)
 * and an int64 (field 2), so decoding them by hand avoids a runtime protobuf dependency.
 * Length-delimited fields are read as UTF-8 (later occurrences win, as protobuf says); varints as numbers.
 */
export function readFields(bytes: Uint8Array): {
  strings: Map<number, string>;
  varints: Map<number, number>;
} {
  const strings = new Map<number, string>();
  const varints = new Map<number, number>();
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= bytes.length) throw new Error('protobuf: truncated varint');
      const byte = bytes[pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error('protobuf: varint longer than 10 bytes');
  };
  while (pos < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new Error('protobuf: field number 0');
    switch (wireType) {
      case 0:
        varints.set(field, varint());
        break;
      case 1:
      case 5: {
        pos += wireType === 1 ? 8 : 4;
        if (pos > bytes.length) throw new Error('protobuf: truncated fixed-width field');
        break;
      }
      case 2: {
        const length = varint();
        if (pos + length > bytes.length) throw new Error('protobuf: truncated length-delimited field');
        strings.set(field, decoder.decode(bytes.subarray(pos, pos + length)));
        pos += length;
        break;
      }
      default:
        throw new Error(`protobuf: unsupported wire type ${wireType}`);
    }
  }
  return { strings, varints };
}
