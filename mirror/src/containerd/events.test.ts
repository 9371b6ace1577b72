import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoreEvent } from '../store/content-store.js';
import { EVENT_TYPES, decodeEvent, readFields, subscribeFilters } from './events.js';

// Payloads captured from containerd 1.6.20 (Events.Subscribe on the test bed).
const CAPTURED = {
  // ctr images label 127.0.2.1:5000/test/app:v1 foo=bar
  update: '0a1a3132372e302e322e313a353030302f746573742f6170703a7631120a0a03666f6f1203626172',
  // ctr images tag … x.io/y:z (labels copied: foo=bar)
  create: '0a08782e696f2f793a7a120a0a03666f6f1203626172',
  delete: '0a08782e696f2f793a7a',
  contentDelete:
    '0a477368613235363a35663031376330633131346630363932353931313434386637343738663432303762323062373337303538636533616534326538326637333937646131306336',
};
const CONFIG_DIGEST = 'sha256:5f017c0c114f06925911448f7478f4207b20b737058ce3ae42e82f7397da10c6';
const DIGEST = `sha256:${'ab'.repeat(32)}` as const;

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return out;
}
function stringField(field: number, value: string): number[] {
  const bytes = [...Buffer.from(value, 'utf8')];
  return [...varint(field * 8 + 2), ...varint(bytes.length), ...bytes];
}
function varintField(field: number, value: number): number[] {
  return [...varint(field * 8), ...varint(value)];
}
const hex = (value: string): Buffer => Buffer.from(value, 'hex');

describe('decodeEvent', () => {
  const cases: { title: string; typeUrl: string; value: Uint8Array; want: StoreEvent | undefined }[] = [
    {
      title: 'captured ImageCreate (with labels map)',
      typeUrl: EVENT_TYPES.imageCreate,
      value: hex(CAPTURED.create),
      want: { kind: 'image-create', name: 'x.io/y:z' },
    },
    {
      title: 'captured ImageUpdate',
      typeUrl: 'containerd.services.images.v1.ImageUpdate',
      value: hex(CAPTURED.update),
      want: { kind: 'image-update', name: '127.0.2.1:5000/test/app:v1' },
    },
    {
      title: 'captured ImageDelete',
      typeUrl: 'containerd.services.images.v1.ImageDelete',
      value: hex(CAPTURED.delete),
      want: { kind: 'image-delete', name: 'x.io/y:z' },
    },
    {
      title: 'captured ContentDelete',
      typeUrl: 'containerd.events.ContentDelete',
      value: hex(CAPTURED.contentDelete),
      want: { kind: 'content-delete', digest: CONFIG_DIGEST },
    },
    {
      title: 'ContentCreate with size (containerd 2.1+)',
      typeUrl: 'containerd.events.ContentCreate',
      value: Uint8Array.from([...stringField(1, DIGEST), ...varintField(2, 209_715_200)]),
      want: { kind: 'content-create', digest: DIGEST, size: 209_715_200 },
    },
    {
      title: 'ContentCreate with a size above 2^32',
      typeUrl: 'containerd.events.ContentCreate',
      value: Uint8Array.from([...varintField(2, 2 ** 40 + 3), ...stringField(1, DIGEST)]),
      want: { kind: 'content-create', digest: DIGEST, size: 2 ** 40 + 3 },
    },
    {
      title: 'ContentCreate without size',
      typeUrl: 'containerd.events.ContentCreate',
      value: Uint8Array.from(stringField(1, DIGEST)),
      want: { kind: 'content-create', digest: DIGEST },
    },
    {
      title: 'a type URL with a types.googleapis.com/ prefix',
      typeUrl: 'types.googleapis.com/containerd.services.images.v1.ImageDelete',
      value: hex(CAPTURED.delete),
      want: { kind: 'image-delete', name: 'x.io/y:z' },
    },
    {
      title: 'unknown fields are skipped (fixed64, fixed32, later fields)',
      typeUrl: EVENT_TYPES.imageDelete,
      value: Uint8Array.from([
        0x19,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        0x25,
        1,
        2,
        3,
        4,
        ...stringField(1, 'a/b:c'),
        ...varintField(9, 5),
      ]),
      want: { kind: 'image-delete', name: 'a/b:c' },
    },
    {
      title: 'the last occurrence of a field wins',
      typeUrl: EVENT_TYPES.imageCreate,
      value: Uint8Array.from([...stringField(1, 'first'), ...stringField(1, 'second')]),
      want: { kind: 'image-create', name: 'second' },
    },
    {
      title: 'an image event without a name',
      typeUrl: EVENT_TYPES.imageCreate,
      value: new Uint8Array(),
      want: undefined,
    },
    {
      title: 'a content event with a malformed digest',
      typeUrl: EVENT_TYPES.contentDelete,
      value: Uint8Array.from(stringField(1, 'sha256:../../x')),
      want: undefined,
    },
    {
      title: 'an event type the mirror does not follow',
      typeUrl: 'containerd.events.TaskExit',
      value: hex(CAPTURED.delete),
      want: undefined,
    },
  ];
  for (const { title, typeUrl, value, want } of cases) {
    it(title, () => assert.deepEqual(decodeEvent(typeUrl, value), want));
  }

  const malformed: { title: string; value: number[]; message: string }[] = [
    { title: 'truncated varint', value: [0x0a, 0x80], message: 'protobuf: truncated varint' },
    {
      title: 'truncated string',
      value: [0x0a, 5, 0x61],
      message: 'protobuf: truncated length-delimited field',
    },
    { title: 'truncated fixed64', value: [0x19, 1, 2], message: 'protobuf: truncated fixed-width field' },
    { title: 'group wire type', value: [0x0b], message: 'protobuf: unsupported wire type 3' },
    { title: 'field number 0', value: [0x02, 0], message: 'protobuf: field number 0' },
    {
      title: 'overlong varint',
      value: [0x08, ...Array<number>(10).fill(0xff), 0x01],
      message: 'protobuf: varint longer than 10 bytes',
    },
  ];
  for (const { title, value, message } of malformed) {
    it(`throws on ${title}`, () => {
      assert.throws(() => decodeEvent(EVENT_TYPES.imageDelete, Uint8Array.from(value)), { message });
    });
  }
});

describe('readFields', () => {
  it('separates length-delimited and varint fields', () => {
    const { strings, varints } = readFields(
      Uint8Array.from([...stringField(3, 'héllo'), ...varintField(4, 300)]),
    );
    assert.deepEqual([...strings], [[3, 'héllo']]);
    assert.deepEqual([...varints], [[4, 300]]);
  });
});

describe('subscribeFilters', () => {
  it('selects image and content topics of one namespace', () => {
    assert.deepEqual(subscribeFilters('k8s.io'), [
      'namespace==k8s.io,topic~="^/images/"',
      'namespace==k8s.io,topic~="^/content/"',
    ]);
  });
  for (const namespace of ['', 'a,topic==x', 'a"b', 'k8s io']) {
    it(`rejects the namespace ${JSON.stringify(namespace)}`, () => {
      assert.throws(() => subscribeFilters(namespace), {
        name: 'TypeError',
        message: `invalid containerd namespace "${namespace}"`,
      });
    });
  }
});
