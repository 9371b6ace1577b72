import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePins, parseRuntimeName, runtimeFor, runtimePath } from './runtime.js';

const PINS = parsePins(
  [
    '# a comment',
    '# renovate: datasource=go depName=github.com/containerd/containerd/v2',
    'CONTAINERD_2_2_VERSION=2.2.5',
    '',
    'CONTAINERD_2_1_DEB=2.1.9+ds1-5',
    'CONTAINERD_1_7_DEB=1.7.24~ds1-6+deb13u1',
  ].join('\n'),
);

describe('test bed runtimes', () => {
  it('reads KEY=value pins and skips comments', () => {
    assert.deepEqual(PINS, {
      CONTAINERD_2_2_VERSION: '2.2.5',
      CONTAINERD_2_1_DEB: '2.1.9+ds1-5',
      CONTAINERD_1_7_DEB: '1.7.24~ds1-6+deb13u1',
    });
  });

  it('defaults to 2.2 and names the variable on a bad value', () => {
    assert.equal(parseRuntimeName(undefined), '2.2');
    assert.equal(parseRuntimeName(''), '2.2');
    assert.equal(parseRuntimeName('1.6'), '1.6');
    assert.throws(() => parseRuntimeName('2'), {
      message: 'PEILI_CONTAINERD: expected one of 2.2, 2.1, 1.7, 1.6, got "2"',
    });
  });

  it('finds each pinned runtime in the cache; 1.6 is the system one', () => {
    const env = { PEILI_CACHE_DIR: '/c' };
    assert.deepEqual(runtimeFor('2.2', PINS, env), {
      name: '2.2',
      version: '2.2.5',
      binDir: '/c/containerd-2.2.5/bin',
      major: 2,
    });
    assert.equal(runtimeFor('1.7', PINS, env).binDir, '/c/containerd-1.7.24~ds1-6+deb13u1/bin');
    assert.equal(runtimeFor('1.7', PINS, env).major, 1);
    assert.deepEqual(runtimeFor('1.6', PINS, env), {
      name: '1.6',
      version: '1.6 (system)',
      binDir: undefined,
      major: 1,
    });
    assert.throws(() => runtimeFor('2.1', {}, env), {
      message: 'scripts/pins.env: CONTAINERD_2_1_DEB is missing',
    });
  });

  it('puts the runtime own binaries first on PATH (its shim)', () => {
    assert.equal(
      runtimePath(runtimeFor('2.2', PINS, { PEILI_CACHE_DIR: '/c' }), '/usr/bin'),
      '/c/containerd-2.2.5/bin:/usr/bin',
    );
    assert.equal(runtimePath(runtimeFor('1.6', PINS), '/usr/bin'), '/usr/bin');
  });
});
