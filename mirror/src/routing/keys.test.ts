import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyKind } from './keys.js';

describe('routing keys', () => {
  const cases: [string, 'digest' | 'tag' | undefined][] = [
    ['sha256:' + 'a'.repeat(64), 'digest'],
    ['sha512:' + 'b'.repeat(128), 'digest'],
    ['sha256:' + 'a'.repeat(63), undefined],
    ['sha256:' + 'A'.repeat(64), undefined],
    ['md5:' + 'a'.repeat(32), undefined],
    ['docker.io/library/nginx:1.27', 'tag'],
    ['127.0.0.1:5000/test/app:v1', 'tag'],
    ['[fd00::1]:5000/test/app:v1', 'tag'],
    ['Registry.Example.com/org/app:latest', 'tag'],
    ['ghcr.io/org/team/app_x__y.z-w:V1_2.3-rc', 'tag'],
    ['ghcr.io/org/app:' + 'a'.repeat(128), 'tag'],
    ['ghcr.io/org/app:' + 'a'.repeat(129), undefined],
    ['ghcr.io/org/app:.hidden', undefined],
    ['ghcr.io/Org/app:v1', undefined],
    ['ghcr.io/org//app:v1', undefined],
    ['ghcr.io/org/app', undefined],
    ['nginx:1.27', undefined],
    ['docker.io/library/nginx@sha256:' + 'a'.repeat(64), undefined],
    ['registry:99999/app:v1', undefined],
    ['-bad.example/app:v1', undefined],
    ['', undefined],
  ];
  for (const [key, kind] of cases) {
    it(`${JSON.stringify(key.length > 60 ? key.slice(0, 60) + '…' : key)} is ${kind ?? 'not a key'}`, () =>
      assert.equal(keyKind(key), kind));
  }
});
