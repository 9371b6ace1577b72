import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { upstreamHostsToml, withHostTable, writeHostsToml } from './hosts-toml.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peili-hosts-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('withHostTable', () => {
  const cases: { name: string; input: string; output: string }[] = [
    {
      name: 'adds [host] to a server-only file',
      input: 'server = "http://a"',
      output: 'server = "http://a"\n\n[host]\n',
    },
    {
      name: 'keeps a file with host tables',
      input: '[host."http://m"]\n  capabilities = ["pull"]\n',
      output: '[host."http://m"]\n  capabilities = ["pull"]\n',
    },
    {
      name: 'keeps a file with an empty [host]',
      input: 'server = "http://a"\n[host]\n',
      output: 'server = "http://a"\n[host]\n',
    },
  ];
  for (const { name, input, output } of cases) {
    it(name, () => assert.equal(withHostTable(input), output));
  }
});

describe('upstreamHostsToml', () => {
  it('renders the server alone', () => {
    assert.equal(upstreamHostsToml('http://127.0.1.1:5000'), 'server = "http://127.0.1.1:5000"\n\n[host]\n');
  });
  it('renders mirrors in order before the server', () => {
    assert.equal(
      upstreamHostsToml('http://127.0.1.1:5000', [
        { url: 'http://127.0.1.2:30020' },
        { url: 'http://127.0.1.3:30020', capabilities: ['pull'] },
      ]),
      [
        'server = "http://127.0.1.1:5000"',
        '',
        '[host."http://127.0.1.2:30020"]',
        '  capabilities = ["pull", "resolve"]',
        '',
        '[host."http://127.0.1.3:30020"]',
        '  capabilities = ["pull"]',
        '',
      ].join('\n'),
    );
  });
});

describe('writeHostsToml', () => {
  it('writes <configPath>/<host>/hosts.toml and returns its path', async () => {
    const path = await writeHostsToml(
      join(dir, 'certs.d'),
      'docker.io',
      'server = "http://127.0.1.1:5000"\n',
    );
    assert.equal(path, join(dir, 'certs.d', 'docker.io', 'hosts.toml'));
    assert.equal(await readFile(path, 'utf8'), 'server = "http://127.0.1.1:5000"\n\n[host]\n');
  });
  for (const host of ['../etc', '..', 'a/b', '']) {
    it(`rejects registry host "${host}"`, async () => {
      await assert.rejects(writeHostsToml(dir, host, ''), {
        message: `writeHostsToml: "${host}" is not a registry host (name[:port] or _default)`,
      });
    });
  }
});
