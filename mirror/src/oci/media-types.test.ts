import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MANIFEST_MEDIA_TYPES,
  MediaTypes,
  detectManifestMediaType,
  isIndexMediaType,
} from './media-types.js';

describe('detectManifestMediaType', () => {
  const cases: Array<[name: string, document: string, want: string | undefined]> = [
    [
      'docker manifest field',
      `{"schemaVersion":2,"mediaType":"${MediaTypes.dockerManifest}","config":{},"layers":[]}`,
      MediaTypes.dockerManifest,
    ],
    [
      'docker list field',
      `{"mediaType":"${MediaTypes.dockerManifestList}","manifests":[]}`,
      MediaTypes.dockerManifestList,
    ],
    ['oci index field', `{"mediaType":"${MediaTypes.ociIndex}","manifests":[]}`, MediaTypes.ociIndex],
    [
      'oci manifest field',
      `{"mediaType":"${MediaTypes.ociManifest}","config":{},"layers":[]}`,
      MediaTypes.ociManifest,
    ],
    [
      'field wins over shape',
      `{"mediaType":"${MediaTypes.ociManifest}","manifests":[]}`,
      MediaTypes.ociManifest,
    ],
    ['index by shape', '{"schemaVersion":2,"manifests":[{"digest":"x"}]}', MediaTypes.ociIndex],
    ['manifest by shape', '{"schemaVersion":2,"config":{"digest":"x"},"layers":[]}', MediaTypes.ociManifest],
    ['empty mediaType falls back to shape', '{"mediaType":"","manifests":[]}', MediaTypes.ociIndex],
    [
      'non-string mediaType falls back to shape',
      '{"mediaType":5,"config":{},"layers":[]}',
      MediaTypes.ociManifest,
    ],
    ['config without layers', '{"config":{}}', undefined],
    ['layers without config', '{"layers":[]}', undefined],
    ['config not an object', '{"config":"x","layers":[]}', undefined],
    ['manifests not an array', '{"manifests":{}}', undefined],
    ['image config', '{"architecture":"amd64","os":"linux","rootfs":{}}', undefined],
    ['array', '[1,2]', undefined],
    ['null', 'null', undefined],
    ['string', '"x"', undefined],
    ['not json', '\u001f\u008b\u0008binary', undefined],
    ['empty', '', undefined],
  ];
  for (const [name, document, want] of cases) {
    it(`${name} → ${String(want)}`, () => {
      assert.equal(detectManifestMediaType(Buffer.from(document)), want);
    });
  }

  it('reads a Uint8Array view at an offset', () => {
    const backing = Buffer.from(`xx{"manifests":[]}`);
    assert.equal(
      detectManifestMediaType(new Uint8Array(backing.buffer, backing.byteOffset + 2, backing.length - 2)),
      MediaTypes.ociIndex,
    );
  });
});

describe('media type constants', () => {
  it('lists the four manifest types containerd asks for', () => {
    assert.deepEqual(MANIFEST_MEDIA_TYPES, [
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
    ]);
  });
  const indexCases: Array<[string, boolean]> = [
    [MediaTypes.ociIndex, true],
    [MediaTypes.dockerManifestList, true],
    [MediaTypes.ociManifest, false],
    [MediaTypes.dockerManifest, false],
  ];
  for (const [type, want] of indexCases) {
    it(`isIndexMediaType(${type}) = ${want}`, () => assert.equal(isIndexMediaType(type), want));
  }
});
