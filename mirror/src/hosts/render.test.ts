import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'smol-toml';
import { parseContainerdVersion, supportsDialTimeout } from './containerd-version.js';
import { HostsTomlError, certPaths, mapCertPaths, parseHostsToml } from './existing.js';
import { hasPeiliHeader, PEILI_HEADER } from './layout.js';
import { defaultServer, isLoopbackHost, renderHostsToml } from './render.js';

describe('renderHostsToml', () => {
  it('a named registry, containerd 1.7+', () => {
    assert.equal(
      renderHostsToml({
        registry: 'docker.io',
        mirrorTargets: ['http://10.0.0.7:29999'],
        resolve: true,
        dialTimeoutMs: 200,
      }),
      `${PEILI_HEADER}
server = "https://registry-1.docker.io"

[host."http://10.0.0.7:29999"]
capabilities = [ "pull", "resolve" ]
dial_timeout = "200ms"
`,
    );
  });

  it('_default without resolve and without dial_timeout (containerd 1.6)', () => {
    assert.equal(
      renderHostsToml({
        registry: undefined,
        mirrorTargets: ['http://10.0.0.7:29999', 'https://[fd00::7]:29999'],
        resolve: false,
        dialTimeoutMs: undefined,
      }),
      `${PEILI_HEADER}

[host."http://10.0.0.7:29999"]
capabilities = [ "pull" ]

[host."https://[fd00::7]:29999"]
capabilities = [ "pull" ]
`,
    );
  });

  it('existing hosts follow ours, their server and settings are kept, duplicates of ours dropped', () => {
    const existing = parseHostsToml(`server = "https://cache.example.com"
skip_verify = true

[host."https://mirror.example.com"]
  capabilities = ["pull"]
  ca = "certs/ca.pem"
  header = { Authorization = "Basic abc", X-Multi = ["a", "b"] }

[host."http://10.0.0.7:29999"]
  capabilities = ["pull", "resolve", "push"]
`);
    assert.equal(
      renderHostsToml({
        registry: 'docker.io',
        mirrorTargets: ['http://10.0.0.7:29999'],
        resolve: true,
        dialTimeoutMs: undefined,
        existing,
      }),
      `${PEILI_HEADER}
server = "https://cache.example.com"
skip_verify = true

[host."http://10.0.0.7:29999"]
capabilities = [ "pull", "resolve" ]

# Hosts of the previous configuration:

[host."https://mirror.example.com"]
capabilities = [ "pull" ]
ca = "certs/ca.pem"

[host."https://mirror.example.com".header]
Authorization = "Basic abc"
X-Multi = [ "a", "b" ]
`,
    );
  });

  it('a folder kept only for its previous hosts has no mirror host', () => {
    const existing = parseHostsToml(`[host."https://quay-mirror:5000"]\n`);
    assert.equal(
      renderHostsToml({
        registry: 'quay.io',
        mirrorTargets: [],
        resolve: true,
        dialTimeoutMs: undefined,
        existing,
      }),
      `${PEILI_HEADER}\nserver = "https://quay.io"\n\n[host."https://quay-mirror:5000"]\n`,
    );
  });

  it('output parses back to the same structure, host order kept', () => {
    const existing = parseHostsToml(
      `[host."https://b"]\nx = 1.5\n[host."https://a"]\ny = "it's"\nz = "tab\\there"\n`,
    );
    const text = renderHostsToml({
      registry: 'ghcr.io',
      mirrorTargets: ['http://m:1'],
      resolve: true,
      dialTimeoutMs: 1500,
      existing,
    });
    const doc = parse(text) as { server: string; host: Record<string, Record<string, unknown>> };
    assert.equal(doc.server, 'https://ghcr.io');
    assert.deepEqual(Object.keys(doc.host), ['http://m:1', 'https://b', 'https://a']);
    assert.deepEqual(
      { ...doc.host['http://m:1'] },
      { capabilities: ['pull', 'resolve'], dial_timeout: '1500ms' },
    );
    assert.deepEqual({ ...doc.host['https://b'] }, { x: 1.5 });
    assert.deepEqual({ ...doc.host['https://a'] }, { y: "it's", z: 'tab\there' });
    assert.ok(hasPeiliHeader(text));
  });
});

describe('servers and values', () => {
  const servers: [string, string][] = [
    ['docker.io', 'https://registry-1.docker.io'],
    ['ghcr.io', 'https://ghcr.io'],
    ['registry.k8s.io', 'https://registry.k8s.io'],
    ['myreg.example.com:5000', 'https://myreg.example.com:5000'],
    ['127.0.4.1:5000', 'http://127.0.4.1:5000'],
    ['localhost:5000', 'http://localhost:5000'],
    ['localhost', 'http://localhost'],
    ['[::1]:5000', 'http://[::1]:5000'],
    ['[fd00::1]:5000', 'https://[fd00::1]:5000'],
    ['128.0.0.1:5000', 'https://128.0.0.1:5000'],
  ];
  for (const [registry, server] of servers) {
    it(`${registry} -> ${server}`, () => assert.equal(defaultServer(registry), server));
  }

  it('isLoopbackHost', () => {
    assert.equal(isLoopbackHost('127.0.0.1'), true);
    assert.equal(isLoopbackHost('localhost.example.com'), false);
  });

  it('every TOML value of a previous configuration survives the rewrite', () => {
    const previous = `server = "https://r"
when = 1979-05-27T07:32:00Z
[host."https://a"]
plain = 'plain'
quote = "it's"
lines = "line\\nbreak"
yes = true
n = 42
f = 1.25
big = inf
pairs = [["a", "b"], ["c", "d"]]
inline = { "a b" = "c", nested = { d = [] } }
empty = {}
`;
    const existing = parseHostsToml(previous);
    const text = renderHostsToml({
      registry: 'r',
      mirrorTargets: ['http://m:1'],
      resolve: true,
      dialTimeoutMs: undefined,
      existing,
    });
    const before = parse(previous) as { host: Record<string, unknown> };
    const after = parse(text) as { host: Record<string, unknown> };
    assert.deepEqual(after.host['https://a'], before.host['https://a']);
    assert.deepEqual(
      (after as unknown as { when: unknown }).when,
      (before as unknown as { when: unknown }).when,
    );
  });
});

describe('parseHostsToml', () => {
  it('hosts in file order, top-level keys apart', () => {
    const file = parseHostsToml(
      `server = "https://r"\n[host."https://z"]\na = 1\n[host."https://a"]\nb = 2\n`,
    );
    assert.deepEqual({ ...file.top }, { server: 'https://r' });
    assert.deepEqual(
      file.hosts.map((h) => h.url),
      ['https://z', 'https://a'],
    );
  });

  const errors: [string, string][] = [
    ['server = ', 'x/hosts.toml: not valid TOML: '],
    ['host = 1', 'x/hosts.toml: "host" must be a table of [host.\'<url>\'] tables'],
    ['host = { "https://a" = 1 }', 'x/hosts.toml: host "https://a" must be a table'],
  ];
  for (const [text, prefix] of errors) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseHostsToml(text, 'x/hosts.toml'),
        (error: unknown) => error instanceof HostsTomlError && error.message.startsWith(prefix),
      );
    });
  }

  it('cert paths of every form containerd accepts', () => {
    const file = parseHostsToml(`
[host."https://a"]
ca = "ca.pem"
client = "client.pem"
[host."https://b"]
ca = ["/etc/ca1.pem", "ca2.pem"]
client = [["c.cert", "c.key"], "d.pem"]
`);
    assert.deepEqual(certPaths(file.hosts[0]!.table), ['ca.pem', 'client.pem']);
    assert.deepEqual(certPaths(file.hosts[1]!.table), [
      '/etc/ca1.pem',
      'ca2.pem',
      'c.cert',
      'c.key',
      'd.pem',
    ]);
    const mapped = mapCertPaths(file.hosts[1]!.table, (p) => `x/${p}`);
    assert.deepEqual(mapped.client, [['x/c.cert', 'x/c.key'], 'x/d.pem']);
    assert.deepEqual(mapped.ca, ['x//etc/ca1.pem', 'x/ca2.pem']);
  });
});

describe('containerd versions', () => {
  const table: [string | undefined, boolean][] = [
    ['1.6.20~ds1', false],
    ['v1.6.0', false],
    ['1.7.0', true],
    ['v1.7.2', true],
    ['2.0.0-rc.1', true],
    ['1.10.0', true],
    ['0.9', false],
    ['garbage', false],
    [undefined, false],
  ];
  for (const [version, want] of table) {
    it(`${version} -> dial_timeout ${want}`, () => assert.equal(supportsDialTimeout(version), want));
  }
  it('parseContainerdVersion', () => {
    assert.deepEqual(parseContainerdVersion(' v1.7.13 '), { major: 1, minor: 7 });
    assert.equal(parseContainerdVersion('x'), undefined);
  });
});
