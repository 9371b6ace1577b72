import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { cleanup } from './cleanup.js';
import { configure, hostDirectoryAlias, HostsStateError, type ConfigureOptions } from './configure.js';
import { BACKUP_MARKER, PEILI_HEADER } from './layout.js';
import { buildFixtureTree, snapshotTree } from '../../test-support/hosts-fixtures.js';

const scratch = await mkdtemp(join(tmpdir(), 'peili-hosts-'));
after(() => rm(scratch, { recursive: true, force: true }));

let counter = 0;
let root = '';
beforeEach(async () => {
  root = join(scratch, `case-${++counter}`, 'certs.d');
  await mkdir(root, { recursive: true });
});

const TARGET = 'http://10.0.0.7:29999';

function options(overrides: Partial<ConfigureOptions> = {}): ConfigureOptions {
  return {
    configPath: root,
    registries: [],
    mirrorTargets: [TARGET],
    resolve: true,
    prependExisting: false,
    containerdVersion: '1.6.20~ds1',
    ...overrides,
  };
}

const notBackup = (rel: string): boolean => rel === '_backup' || rel.startsWith('_backup/');

describe('configure', () => {
  it('first run: complete backup, one _default folder, originals gone', async () => {
    await buildFixtureTree(root);
    const original = await snapshotTree(root, { withTimes: true });
    const result = await configure(options());
    assert.deepEqual(result, {
      backupCreated: true,
      folders: ['_default'],
      dialTimeout: false,
      foreign: [],
      warnings: [],
    });
    assert.deepEqual(
      await snapshotTree(join(root, '_backup'), { withTimes: true, exclude: (rel) => rel === BACKUP_MARKER }),
      original,
    );
    assert.deepEqual(await snapshotTree(root, { exclude: notBackup }), {
      _default: { kind: 'dir', mode: '755' },
      '_default/hosts.toml': {
        kind: 'file',
        mode: '644',
        content: `${PEILI_HEADER}\n\n[host."${TARGET}"]\ncapabilities = [ "pull", "resolve" ]\n`,
      },
    });
  });

  it('second run: byte-identical, backup kept', async () => {
    await buildFixtureTree(root);
    await configure(options({ registries: ['docker.io'], prependExisting: true }));
    const first = await snapshotTree(root);
    const result = await configure(options({ registries: ['docker.io'], prependExisting: true }));
    assert.equal(result.backupCreated, false);
    assert.deepEqual(await snapshotTree(root), first);
  });

  it('registries with prepend-existing: their hosts after ours, certs copied, unmirrored folders kept', async () => {
    await buildFixtureTree(root);
    const result = await configure(
      options({
        registries: ['docker.io', 'ghcr.io'],
        prependExisting: true,
        containerdVersion: 'v1.7.2',
        dialTimeoutMs: 300,
      }),
    );
    assert.deepEqual(result, {
      backupCreated: true,
      folders: ['docker.io', 'ghcr.io', 'quay.io'],
      dialTimeout: true,
      foreign: [],
      warnings: [],
    });
    const live = await snapshotTree(root, { exclude: notBackup });
    assert.deepEqual(Object.keys(live), [
      'docker.io',
      'docker.io/_peili-certs',
      'docker.io/_peili-certs/1-ca.crt',
      'docker.io/_peili-certs/2-client.cert',
      'docker.io/_peili-certs/3-client.key',
      'docker.io/hosts.toml',
      'ghcr.io',
      'ghcr.io/hosts.toml',
      'quay.io',
      'quay.io/_peili-certs',
      'quay.io/_peili-certs/1-ca.pem',
      'quay.io/hosts.toml',
    ]);
    assert.deepEqual(live['docker.io/_peili-certs/3-client.key'], {
      kind: 'file',
      mode: '600',
      content: 'CLIENT KEY\n',
    });
    assert.deepEqual(live['quay.io/_peili-certs/1-ca.pem'], {
      kind: 'file',
      mode: '444',
      content: 'QUAY CA\n',
    });
    assert.equal(
      live['docker.io/hosts.toml']!.content,
      `${PEILI_HEADER}
server = "https://registry-1.docker.io"

[host."${TARGET}"]
capabilities = [ "pull", "resolve" ]
dial_timeout = "300ms"

# Hosts of the previous configuration:

[host."https://mirror.corp.example:5000"]
capabilities = [ "pull", "resolve" ]
ca = "_peili-certs/1-ca.crt"
client = [ [ "_peili-certs/2-client.cert", "_peili-certs/3-client.key" ] ]
`,
    );
    assert.equal(
      live['ghcr.io/hosts.toml']!.content,
      `${PEILI_HEADER}\nserver = "https://ghcr.io"\n\n[host."${TARGET}"]\ncapabilities = [ "pull", "resolve" ]\ndial_timeout = "300ms"\n`,
    );
    assert.equal(
      live['quay.io/hosts.toml']!.content,
      `${PEILI_HEADER}\nserver = "https://quay.io"\n\n[host."https://quay-cache.corp.example"]\nca = "_peili-certs/1-ca.pem"\n\n[host."https://quay-cache.corp.example".header]\nX-Team = "infra"\n`,
    );
  });

  it('a changed registry list removes stale Peili folders; prepend-existing off drops copied certs', async () => {
    await buildFixtureTree(root);
    await configure(options({ registries: ['docker.io', 'ghcr.io'], prependExisting: true }));
    const result = await configure(options({ registries: ['ghcr.io'] }));
    assert.deepEqual(result.folders, ['ghcr.io']);
    assert.deepEqual(Object.keys(await snapshotTree(root, { exclude: notBackup })), [
      'ghcr.io',
      'ghcr.io/hosts.toml',
    ]);
  });

  it("leaves someone else's entries alone and reports them", async () => {
    await buildFixtureTree(root);
    await configure(options());
    await mkdir(join(root, 'added.example'));
    await writeFile(join(root, 'added.example', 'hosts.toml'), 'server = "https://added.example"\n');
    await writeFile(join(root, '_default', 'notes.txt'), 'mine\n');
    const result = await configure(options());
    assert.deepEqual(result.foreign, ['added.example']);
    assert.equal(
      await readFile(join(root, 'added.example', 'hosts.toml'), 'utf8'),
      'server = "https://added.example"\n',
    );
    assert.equal(await readFile(join(root, '_default', 'notes.txt'), 'utf8'), 'mine\n');
  });

  it('an unreadable previous hosts.toml is a warning, not a failure', async () => {
    await mkdir(join(root, 'docker.io'));
    await writeFile(join(root, 'docker.io', 'hosts.toml'), 'server = \n');
    const result = await configure(options({ registries: ['docker.io'], prependExisting: true }));
    assert.equal(result.warnings.length, 1);
    assert.match(
      result.warnings[0]!,
      /^_backup\/docker\.io\/hosts\.toml: not valid TOML: .*; its hosts are not kept$/,
    );
  });

  it('a missing cert file is a warning and its path is kept', async () => {
    await mkdir(join(root, 'docker.io'));
    await writeFile(
      join(root, 'docker.io', 'hosts.toml'),
      '[host."https://m"]\nca = "/nonexistent/ca.pem"\n',
    );
    const result = await configure(options({ registries: ['docker.io'], prependExisting: true }));
    assert.deepEqual(result.warnings, [
      '_backup/docker.io/hosts.toml: cert file /nonexistent/ca.pem not found; path kept as is',
    ]);
    assert.match(
      await readFile(join(root, 'docker.io', 'hosts.toml'), 'utf8'),
      /ca = "\/nonexistent\/ca.pem"/,
    );
  });

  it('creates a missing config path; refuses a _backup that is not ours; refuses bad registry names', async () => {
    const fresh = join(root, 'not-yet', 'certs.d');
    assert.equal((await configure(options({ configPath: fresh }))).backupCreated, true);
    await mkdir(join(root, '_backup'));
    await assert.rejects(configure(options()), HostsStateError);
    await assert.rejects(configure(options({ configPath: fresh, registries: ['../x'] })), {
      message: 'configure: "../x" cannot be a registry folder name',
    });
    await assert.rejects(configure(options({ configPath: fresh, mirrorTargets: [] })), {
      message: 'configure: no mirror targets given',
    });
  });

  it("a registry's host_port_ folder (read first by containerd) supplies its previous hosts", async () => {
    await mkdir(join(root, 'reg.example_5000_'));
    await writeFile(
      join(root, 'reg.example_5000_', 'hosts.toml'),
      '[host."https://alt:5000"]\nca = "ca.pem"\n',
    );
    await writeFile(join(root, 'reg.example_5000_', 'ca.pem'), 'ALT CA\n');
    await mkdir(join(root, 'reg.example:5000'));
    await writeFile(join(root, 'reg.example:5000', 'hosts.toml'), '[host."https://shadowed:5000"]\n');
    const result = await configure(options({ registries: ['reg.example:5000'], prependExisting: true }));
    assert.deepEqual(result.folders, ['reg.example:5000']);
    const live = await snapshotTree(root, { exclude: notBackup });
    assert.deepEqual(Object.keys(live), [
      'reg.example:5000',
      'reg.example:5000/_peili-certs',
      'reg.example:5000/_peili-certs/1-ca.pem',
      'reg.example:5000/hosts.toml',
    ]);
    assert.equal(
      live['reg.example:5000/hosts.toml']!.content,
      `${PEILI_HEADER}\nserver = "https://reg.example:5000"\n\n[host."${TARGET}"]\ncapabilities = [ "pull", "resolve" ]\n\n# Hosts of the previous configuration:\n\n[host."https://alt:5000"]\nca = "_peili-certs/1-ca.pem"\n`,
    );
    assert.deepEqual(['docker.io', 'reg.example:5000', '[::1]:5000', 'localhost:x'].map(hostDirectoryAlias), [
      undefined,
      'reg.example_5000_',
      '[::1]_5000_',
      undefined,
    ]);
  });

  it('a registry name taken by a file in the original is replaced by a folder', async () => {
    await writeFile(join(root, 'docker.io'), 'oops\n');
    await configure(options({ registries: ['docker.io'] }));
    assert.match(await readFile(join(root, 'docker.io', 'hosts.toml'), 'utf8'), /^# Written by peili/);
    await cleanup({ configPath: root });
    assert.equal(await readFile(join(root, 'docker.io'), 'utf8'), 'oops\n');
  });
});

describe('cleanup', () => {
  it('restores the original exactly (bytes, modes, links, times) and is idempotent', async () => {
    await buildFixtureTree(root);
    const original = await snapshotTree(root, { withTimes: true });
    await configure(options({ registries: ['docker.io', 'ghcr.io'], prependExisting: true }));
    assert.deepEqual(await cleanup({ configPath: root }), { restored: true, removed: ['ghcr.io'] });
    assert.deepEqual(await snapshotTree(root, { withTimes: true }), original);
    assert.deepEqual(await cleanup({ configPath: root }), { restored: false, removed: [] });
    assert.deepEqual(await snapshotTree(root, { withTimes: true }), original);
  });

  it('after several configures with different settings', async () => {
    await buildFixtureTree(root);
    const original = await snapshotTree(root, { withTimes: true });
    await configure(options());
    await configure(options({ registries: ['docker.io'], prependExisting: true }));
    await configure(options({ registries: ['quay.io', 'docker.io'] }));
    await cleanup({ configPath: root });
    assert.deepEqual(await snapshotTree(root, { withTimes: true }), original);
  });

  it('without a backup removes only Peili files', async () => {
    await buildFixtureTree(root);
    await configure(options({ registries: ['ghcr.io'] }));
    await rm(join(root, '_backup'), { recursive: true });
    await writeFile(join(root, 'keep.txt'), 'x\n');
    assert.deepEqual(await cleanup({ configPath: root }), { restored: false, removed: ['ghcr.io'] });
    assert.deepEqual(Object.keys(await snapshotTree(root)), ['keep.txt']);
  });

  it('keeps entries added after configure', async () => {
    await configure(options());
    await mkdir(join(root, 'added.example'));
    await writeFile(join(root, 'added.example', 'hosts.toml'), 'x = 1\n');
    await cleanup({ configPath: root });
    assert.deepEqual(Object.keys(await snapshotTree(root)), ['added.example', 'added.example/hosts.toml']);
  });

  it("a lost backup is made again without Peili's own folders", async () => {
    await buildFixtureTree(root);
    await configure(options({ registries: ['ghcr.io'] }));
    await rm(join(root, '_backup'), { recursive: true });
    const result = await configure(options({ registries: ['ghcr.io'] }));
    assert.equal(result.backupCreated, true);
    assert.deepEqual(Object.keys(await snapshotTree(join(root, '_backup'))), [BACKUP_MARKER]);
    await cleanup({ configPath: root });
    assert.deepEqual(Object.keys(await snapshotTree(root)), []);
  });

  it('works through a config path that is a symlink', async () => {
    await buildFixtureTree(root);
    const original = await snapshotTree(root, { withTimes: true });
    const link = join(root, '..', 'link');
    await symlink(root, link);
    await configure(options({ configPath: link }));
    assert.deepEqual(Object.keys(await snapshotTree(root, { exclude: notBackup })), [
      '_default',
      '_default/hosts.toml',
    ]);
    assert.deepEqual(await cleanup({ configPath: link }), { restored: true, removed: ['_default'] });
    assert.deepEqual(await snapshotTree(root, { withTimes: true }), original);
  });

  it('a missing config path is fine; a _backup that is not ours is refused', async () => {
    assert.deepEqual(await cleanup({ configPath: join(root, 'none') }), { restored: false, removed: [] });
    await mkdir(join(root, '_backup'));
    await assert.rejects(cleanup({ configPath: root }), HostsStateError);
  });
});
