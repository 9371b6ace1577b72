import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'smol-toml';
import { mergeCriParts, talosBasePart, talosRegistriesPart } from './talos-cri.js';
import { keepLayersPart } from './containerd.js';

// smol-toml builds tables without a prototype: compare plain copies.
const plain = (toml: string): Record<string, unknown> =>
  JSON.parse(JSON.stringify(parse(toml))) as Record<string, unknown>;
const images = (toml: string): Record<string, unknown> =>
  (plain(toml) as { plugins: Record<string, Record<string, unknown>> }).plugins[
    'io.containerd.cri.v1.images'
  ]!;

describe('mergeCriParts (Talos merge rules)', () => {
  it('stock Talos: layers discarded, local pull, the registries part sets the hosts path', () => {
    const merged = images(mergeCriParts([talosRegistriesPart('/h'), talosBasePart()]));
    assert.equal(merged.discard_unpacked_layers, true);
    assert.equal(merged.use_local_image_pull, true);
    assert.deepEqual(merged.registry, { config_path: '/h' });
  });

  it('a later part turns discard off: booleans always take the later value', () => {
    const merged = images(mergeCriParts([talosBasePart(), talosRegistriesPart('/h'), keepLayersPart()]));
    assert.equal(merged.discard_unpacked_layers, false);
    assert.equal(merged.use_local_image_pull, true);
  });

  it('sorts by name, not by the order given', () => {
    const merged = images(mergeCriParts([keepLayersPart(), talosBasePart()]));
    assert.equal(merged.discard_unpacked_layers, false);
  });

  it('later scalars win unless zero; arrays concatenate; tables merge', () => {
    const merged = plain(
      mergeCriParts([
        { name: 'a.part', toml: 'n = 1\ns = "x"\nl = [1]\n[t]\na = 1' },
        { name: 'b.part', toml: 'n = 0\ns = ""\nl = [2]\n[t]\nb = 2' },
        { name: 'c.part', toml: 'n = 7' },
      ]),
    );
    assert.equal(merged.n, 7);
    assert.equal(merged.s, 'x');
    assert.deepEqual(merged.l, [1, 2]);
    assert.deepEqual(merged.t, { a: 1, b: 2 });
  });

  it('a type mismatch names the part and the key', () => {
    assert.throws(
      () =>
        mergeCriParts([
          { name: '00-a.part', toml: '[p]\nk = true' },
          { name: '20-b.part', toml: '[p]\nk = "yes"' },
        ]),
      { message: '20-b.part: p.k is a string, earlier parts made it a boolean' },
    );
  });

  it('invalid TOML names the part', () => {
    assert.throws(
      () => mergeCriParts([{ name: '20-x.part', toml: '[p' }]),
      /^Error: 20-x\.part: not valid TOML/,
    );
  });
});
