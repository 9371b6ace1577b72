import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OciError } from './errors.js';
import {
  defaultUpstreamUrl,
  imageName,
  isRegistryHost,
  isRepository,
  isTag,
  normalizeRegistry,
  parseRegistryHost,
  parseRepository,
  parseTag,
  upstreamBaseUrl,
} from './reference.js';

function rejects(fn: () => unknown, code: string, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof OciError);
    assert.equal(error.code, code);
    assert.equal(error.status, 400);
    assert.equal(error.message, message);
    return true;
  });
}

describe('parseRepository', () => {
  const valid = [
    'nginx',
    'library/nginx',
    'a/b/c/d',
    'foo.bar',
    'foo_bar',
    'foo__bar',
    'foo-bar',
    'foo---bar',
    'a0/b1.c2_d3__e4-f5',
    'x'.repeat(255),
    `${'a'.repeat(127)}/${'b'.repeat(127)}`,
  ];
  for (const name of valid) {
    it(`accepts ${name.slice(0, 40)}`, () => {
      assert.equal(parseRepository(name), name);
      assert.equal(isRepository(name), true);
    });
  }
  const invalid: Array<[name: string, message: string]> = [
    ['', 'repository name is empty'],
    ['x'.repeat(256), 'repository name is longer than 255 characters'],
    ['Nginx', 'invalid repository name "Nginx": bad path component "Nginx"'],
    ['..', 'invalid repository name "..": bad path component ".."'],
    ['../../etc/passwd', 'invalid repository name "../../etc/passwd": bad path component ".."'],
    ['a/./b', 'invalid repository name "a/./b": bad path component "."'],
    ['a//b', 'invalid repository name "a//b": bad path component ""'],
    ['/a', 'invalid repository name "/a": bad path component ""'],
    ['a/', 'invalid repository name "a/": bad path component ""'],
    ['a___b', 'invalid repository name "a___b": bad path component "a___b"'],
    ['a..b', 'invalid repository name "a..b": bad path component "a..b"'],
    ['a._b', 'invalid repository name "a._b": bad path component "a._b"'],
    ['-a', 'invalid repository name "-a": bad path component "-a"'],
    ['a-', 'invalid repository name "a-": bad path component "a-"'],
    ['_a', 'invalid repository name "_a": bad path component "_a"'],
    ['a:b', 'invalid repository name "a:b": bad path component "a:b"'],
    ['a%2e', 'invalid repository name "a%2e": bad path component "a%2e"'],
    ['a b', 'invalid repository name "a b": bad path component "a b"'],
    ['a\\b', 'invalid repository name "a\\\\b": bad path component "a\\\\b"'],
  ];
  for (const [name, message] of invalid) {
    it(`rejects ${JSON.stringify(name.slice(0, 40))}`, () => {
      rejects(() => parseRepository(name), 'NAME_INVALID', message);
      assert.equal(isRepository(name), false);
    });
  }
});

describe('parseTag', () => {
  const valid = ['latest', '1.27', 'v1.2.3-rc.1', '_x', 'A', 'a'.repeat(128), '1_2-3.4'];
  for (const tag of valid) {
    it(`accepts ${tag.slice(0, 20)}`, () => {
      assert.equal(parseTag(tag), tag);
      assert.equal(isTag(tag), true);
    });
  }
  const invalid = ['', '.x', '-x', 'a'.repeat(129), 'a:b', 'a/b', 'a b', 'ä', `sha256:${'a'.repeat(64)}`];
  for (const tag of invalid) {
    it(`rejects ${JSON.stringify(tag.slice(0, 20))}`, () => {
      rejects(() => parseTag(tag), 'TAG_INVALID', `invalid tag ${JSON.stringify(tag)}`);
      assert.equal(isTag(tag), false);
    });
  }
});

describe('parseRegistryHost', () => {
  const valid = [
    'docker.io',
    'ghcr.io',
    'localhost',
    'localhost:5000',
    '127.0.0.1:5000',
    '127.0.0.1',
    'registry.example.com:443',
    'my-registry.local',
    'Registry.Example.COM',
    '[::1]',
    '[::1]:5000',
    '[2001:db8::1]:65535',
    'a:1',
  ];
  for (const host of valid) {
    it(`accepts ${host}`, () => {
      assert.equal(parseRegistryHost(host), host);
      assert.equal(isRegistryHost(host), true);
    });
  }
  const invalid = [
    '',
    ':5000',
    'docker.io:',
    'docker.io:0',
    'docker.io:65536',
    'docker.io:123456',
    'docker.io:port',
    'docker.io/library',
    '../etc',
    '..',
    '-bad.io',
    'bad-.io',
    'a..b',
    '.io',
    'io.',
    'with space',
    'under_score.io',
    '::1',
    '[::1',
    '[::1]x',
    '[::1]:',
    '[::1]:99999',
    '[not-ip]:5000',
    '[127.0.0.1]',
    'host:5000:6000',
    'http://docker.io',
    'a'.repeat(64) + '.io',
    `${'a.'.repeat(150)}io`,
    'docker.io\u0000',
  ];
  for (const host of invalid) {
    it(`rejects ${JSON.stringify(host.slice(0, 40))}`, () => {
      rejects(
        () => parseRegistryHost(host),
        'NAME_INVALID',
        `invalid registry host ${JSON.stringify(host.slice(0, 300))}`,
      );
      assert.equal(isRegistryHost(host), false);
    });
  }
});

describe('imageName', () => {
  const cases: Array<[registry: string, repository: string, tag: string, want: string]> = [
    ['docker.io', 'nginx', '1.27', 'docker.io/library/nginx:1.27'],
    ['docker.io', 'library/nginx', '1.27', 'docker.io/library/nginx:1.27'],
    ['docker.io', 'bitnami/redis', '7', 'docker.io/bitnami/redis:7'],
    ['index.docker.io', 'nginx', 'latest', 'docker.io/library/nginx:latest'],
    ['registry-1.docker.io', 'org/app', 'v1', 'docker.io/org/app:v1'],
    ['Docker.IO', 'nginx', 'v1', 'docker.io/library/nginx:v1'],
    ['ghcr.io', 'app', 'v1', 'ghcr.io/app:v1'],
    ['ghcr.io', 'org/small', 'v1', 'ghcr.io/org/small:v1'],
    ['127.0.0.1:5000', 'test/app', 'v1', '127.0.0.1:5000/test/app:v1'],
    ['[::1]:5000', 'app', 'v1', '[::1]:5000/app:v1'],
  ];
  for (const [registry, repository, tag, want] of cases) {
    it(`${registry} + ${repository}:${tag} → ${want}`, () =>
      assert.equal(imageName(registry, repository, tag), want));
  }

  const normalized: Array<[string, string]> = [
    ['docker.io', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['quay.io', 'quay.io'],
    ['docker.io:443', 'docker.io:443'],
  ];
  for (const [registry, want] of normalized) {
    it(`normalizeRegistry(${registry}) = ${want}`, () => assert.equal(normalizeRegistry(registry), want));
  }
});

describe('defaultUpstreamUrl', () => {
  const cases: [string, string][] = [
    ['docker.io', 'https://registry-1.docker.io'],
    ['index.docker.io', 'https://registry-1.docker.io'],
    ['registry-1.docker.io', 'https://registry-1.docker.io'],
    ['ghcr.io', 'https://ghcr.io'],
    ['registry.example.com:5000', 'https://registry.example.com:5000'],
    ['127.0.0.1:5000', 'http://127.0.0.1:5000'],
    ['localhost', 'http://localhost'],
    ['[::1]:5000', 'http://[::1]:5000'],
    ['127.example.com', 'https://127.example.com'],
  ];
  for (const [registry, url] of cases) {
    it(`${registry} → ${url}`, () => assert.equal(defaultUpstreamUrl(registry), url));
  }
});

describe('upstreamBaseUrl', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['docker.io', {}, 'https://registry-1.docker.io'],
    ['index.docker.io', {}, 'https://registry-1.docker.io'],
    ['ghcr.io', {}, 'https://ghcr.io'],
    ['registry.example.com:8443', {}, 'https://registry.example.com:8443'],
    ['127.0.0.1:5000', {}, 'http://127.0.0.1:5000'],
    ['127.0.6.3', {}, 'http://127.0.6.3'],
    ['localhost:5000', {}, 'http://localhost:5000'],
    ['[::1]:5000', {}, 'http://[::1]:5000'],
    ['127.example.com', {}, 'https://127.example.com'],
    ['ghcr.io', { 'ghcr.io': 'http://127.0.6.30:1234/' }, 'http://127.0.6.30:1234'],
  ];
  for (const [registry, overrides, want] of cases) {
    it(`${registry} → ${want}`, () => assert.equal(upstreamBaseUrl(registry, overrides), want));
  }
});
