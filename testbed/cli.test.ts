import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageSpecFor } from './cli.js';
import { IMAGES, sizedImage } from './images.js';

describe('imageSpecFor', () => {
  const cases = [
    { name: 'app', spec: IMAGES.app },
    { name: 'multi', spec: IMAGES.multi },
    { name: 'big', spec: IMAGES.big },
    { name: 'sized:100:4', spec: sizedImage(100, 4) },
    { name: 'sized:0.5:1', spec: sizedImage(0.5, 1) },
  ];
  for (const { name, spec } of cases) {
    it(`resolves ${name}`, () => assert.deepEqual(imageSpecFor(name), spec));
  }
  for (const name of ['nope', 'sized:10', 'sized:x:1']) {
    it(`rejects ${name}`, () => {
      assert.throws(() => imageSpecFor(name), {
        message: `unknown image "${name}": use app, multi, big or sized:<MiB>:<layers>`,
      });
    });
  }
});
