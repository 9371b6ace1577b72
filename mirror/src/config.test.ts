import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  FLAGS,
  SUBCOMMANDS,
  firstExternalIPv4,
  flagsFor,
  parseConfig,
  parseDuration,
  usage,
  type ConfigProbe,
  type ConfigureConfig,
  type RegistryConfig,
} from './config.js';

const noInterfaces: ConfigProbe = { networkInterfaces: () => ({}) };
const oneInterface: ConfigProbe = {
  networkInterfaces: () => ({
    lo: [
      {
        address: '127.0.0.1',
        netmask: '255.0.0.0',
        family: 'IPv4',
        mac: '00:00:00:00:00:00',
        internal: true,
        cidr: '127.0.0.1/8',
      },
    ],
    eth0: [
      {
        address: 'fe80::1',
        netmask: 'ffff:ffff:ffff:ffff::',
        family: 'IPv6',
        mac: '02:00:00:00:00:01',
        internal: false,
        cidr: 'fe80::1/64',
        scopeid: 2,
      },
      {
        address: '10.1.2.3',
        netmask: '255.255.255.0',
        family: 'IPv4',
        mac: '02:00:00:00:00:01',
        internal: false,
        cidr: '10.1.2.3/24',
      },
    ],
  }),
};

function registry(
  argv: string[],
  env: Record<string, string> = {},
  probe: ConfigProbe = oneInterface,
): RegistryConfig {
  const config = parseConfig(['registry', ...argv], env, probe);
  assert.equal(config.command, 'registry');
  return config as RegistryConfig;
}

function configure(argv: string[], env: Record<string, string> = {}): ConfigureConfig {
  const config = parseConfig(['configure', ...argv], env);
  assert.equal(config.command, 'configure');
  return config as ConfigureConfig;
}

describe('parseConfig defaults', () => {
  it('registry', () => {
    assert.deepEqual(registry([]), {
      command: 'registry',
      logLevel: 'info',
      containerdSock: '/run/containerd/containerd.sock',
      containerdNamespace: 'k8s.io',
      containerdContentPath: '/var/lib/containerd/io.containerd.content.v1.content',
      registryAddr: { host: '0.0.0.0', port: 5000 },
      routerAddr: { host: '0.0.0.0', port: 5001 },
      metricsAddr: { host: '0.0.0.0', port: 9090 },
      advertiseHost: '10.1.2.3',
      members: [],
      membersDns: undefined,
      membersRefresh: 5000,
      mirroredRegistries: [],
      lookupTimeout: 20,
      resolveTags: 'upstream-down',
      resolveTagsFilter: [],
      upstreamProbeTimeout: 500,
      shutdownTimeout: 10_000,
      peerSecretFile: undefined,
      maxConcurrentRequests: 64,
      privateRegistries: [],
      peerTls: undefined,
    });
  });

  it('configure', () => {
    assert.deepEqual(configure(['--mirror-targets', 'http://10.0.0.7:29999']), {
      command: 'configure',
      logLevel: 'info',
      containerdSock: '/run/containerd/containerd.sock',
      mirroredRegistries: [],
      configPath: '/etc/containerd/certs.d',
      mirrorTargets: ['http://10.0.0.7:29999'],
      prependExisting: false,
      resolve: true,
      dialTimeout: 200,
      containerdVersion: undefined,
    });
  });

  it('cleanup and version', () => {
    assert.deepEqual(parseConfig(['cleanup'], {}), {
      command: 'cleanup',
      logLevel: 'info',
      configPath: '/etc/containerd/certs.d',
    });
    assert.deepEqual(parseConfig(['version'], {}), { command: 'version', logLevel: 'info' });
  });

  it('every default parses (and required flags have none)', () => {
    for (const spec of FLAGS) {
      if (spec.required) assert.equal(spec.default, undefined, spec.name);
    }
    // Parsing with no flags exercises every default of every subcommand.
    assert.equal(parseConfig(['cleanup'], {}).command, 'cleanup');
    assert.equal(registry([]).command, 'registry');
  });

  it('is deeply frozen', () => {
    const config = registry(['--members=10.0.0.1:5001', '--resolve-tags-filter=a,b']);
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.members));
    assert.ok(Object.isFrozen(config.members[0]));
    assert.ok(Object.isFrozen(config.registryAddr));
    assert.ok(Object.isFrozen(config.resolveTagsFilter));
  });
});

describe('parseConfig values', () => {
  const cases: {
    name: string;
    argv: string[];
    env?: Record<string, string>;
    key: keyof RegistryConfig;
    want: unknown;
  }[] = [
    { name: 'duration ms', argv: ['--lookup-timeout=20ms'], key: 'lookupTimeout', want: 20 },
    { name: 'duration s', argv: ['--lookup-timeout', '5s'], key: 'lookupTimeout', want: 5000 },
    { name: 'duration m', argv: ['--members-refresh=2m'], key: 'membersRefresh', want: 120_000 },
    { name: 'duration h', argv: ['--shutdown-timeout=1h'], key: 'shutdownTimeout', want: 3_600_000 },
    {
      name: 'duration decimal',
      argv: ['--upstream-probe-timeout=1.5s'],
      key: 'upstreamProbeTimeout',
      want: 1500,
    },
    { name: 'duration zero', argv: ['--shutdown-timeout=0s'], key: 'shutdownTimeout', want: 0 },
    {
      name: 'address any host',
      argv: ['--registry-addr=:6000'],
      key: 'registryAddr',
      want: { host: '0.0.0.0', port: 6000 },
    },
    {
      name: 'address ipv4',
      argv: ['--router-addr=127.0.0.2:5000'],
      key: 'routerAddr',
      want: { host: '127.0.0.2', port: 5000 },
    },
    {
      name: 'address ipv6',
      argv: ['--metrics-addr=[::1]:5000'],
      key: 'metricsAddr',
      want: { host: '::1', port: 5000 },
    },
    {
      name: 'address name',
      argv: ['--metrics-addr=localhost:1'],
      key: 'metricsAddr',
      want: { host: 'localhost', port: 1 },
    },
    {
      name: 'members list',
      argv: ['--members=10.0.0.1:5001, node-2.peili:5001,[fd00::2]:5001'],
      key: 'members',
      want: [
        { host: '10.0.0.1', port: 5001 },
        { host: 'node-2.peili', port: 5001 },
        { host: 'fd00::2', port: 5001 },
      ],
    },
    { name: 'empty list flag', argv: ['--members='], key: 'members', want: [] },
    {
      name: 'members-dns',
      argv: ['--members-dns=peili-headless.peili.svc'],
      key: 'membersDns',
      want: 'peili-headless.peili.svc',
    },
    {
      name: 'registries deduplicated and lower-cased',
      argv: ['--mirrored-registries=docker.io,GHCR.io,127.0.0.1:5000,docker.io'],
      key: 'mirroredRegistries',
      want: ['docker.io', 'ghcr.io', '127.0.0.1:5000'],
    },
    { name: 'enum', argv: ['--resolve-tags=never'], key: 'resolveTags', want: 'never' },
    { name: 'log level', argv: ['--log-level=trace'], key: 'logLevel', want: 'trace' },
    { name: 'advertise ipv4', argv: ['--advertise-host=10.9.9.9'], key: 'advertiseHost', want: '10.9.9.9' },
    { name: 'advertise ipv6', argv: ['--advertise-host=fd00::9'], key: 'advertiseHost', want: 'fd00::9' },
    {
      name: 'advertise from POD_IP',
      argv: [],
      env: { POD_IP: '10.7.7.7' },
      key: 'advertiseHost',
      want: '10.7.7.7',
    },
    {
      name: 'advertise flag beats POD_IP',
      argv: ['--advertise-host=10.9.9.9'],
      env: { POD_IP: '10.7.7.7' },
      key: 'advertiseHost',
      want: '10.9.9.9',
    },
    {
      name: 'peer secret',
      argv: ['--peer-secret-file=/etc/peili/secret'],
      key: 'peerSecretFile',
      want: '/etc/peili/secret',
    },
    {
      name: 'peer TLS: the four flags grouped, the name lower-cased',
      argv: [
        '--peer-tls-cert-file=/etc/peili/tls/tls.crt',
        '--peer-tls-key-file=/etc/peili/tls/tls.key',
        '--peer-tls-ca-file=/etc/peili/tls/ca.crt',
        '--peer-tls-name=Peili-Peer.kube-system',
      ],
      key: 'peerTls',
      want: {
        certFile: '/etc/peili/tls/tls.crt',
        keyFile: '/etc/peili/tls/tls.key',
        caFile: '/etc/peili/tls/ca.crt',
        name: 'peili-peer.kube-system',
      },
    },
    {
      name: 'peer TLS from the environment',
      argv: ['--peer-tls-name=peili-peer'],
      env: {
        PEILI_PEER_TLS_CERT_FILE: '/c',
        PEILI_PEER_TLS_KEY_FILE: '/k',
        PEILI_PEER_TLS_CA_FILE: '/a',
      },
      key: 'peerTls',
      want: { certFile: '/c', keyFile: '/k', caFile: '/a', name: 'peili-peer' },
    },
    {
      name: 'max concurrent requests',
      argv: ['--max-concurrent-requests=200'],
      key: 'maxConcurrentRequests',
      want: 200,
    },
    {
      name: 'private registries lower-cased, deduplicated',
      argv: ['--private-registries=GHCR.io,registry.example.com:5000,ghcr.io'],
      key: 'privateRegistries',
      want: ['ghcr.io', 'registry.example.com:5000'],
    },
    { name: 'env used', argv: [], env: { PEILI_LOOKUP_TIMEOUT: '50ms' }, key: 'lookupTimeout', want: 50 },
    {
      name: 'flag beats env',
      argv: ['--lookup-timeout=60ms'],
      env: { PEILI_LOOKUP_TIMEOUT: '50ms' },
      key: 'lookupTimeout',
      want: 60,
    },
    {
      name: 'empty env is unset',
      argv: [],
      env: { PEILI_LOOKUP_TIMEOUT: '' },
      key: 'lookupTimeout',
      want: 20,
    },
    {
      name: 'env namespace',
      argv: [],
      env: { PEILI_CONTAINERD_NAMESPACE: 'ns2' },
      key: 'containerdNamespace',
      want: 'ns2',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(registry(c.argv, c.env)[c.key], c.want);
    });
  }

  it('regexes are compiled; an escaped comma is a comma inside the regex', () => {
    const filters = registry([
      '--resolve-tags-filter=^docker\\.io/library/.*:latest$,^x{1\\,2}$',
    ]).resolveTagsFilter;
    assert.deepEqual(
      filters.map((r) => r.source),
      ['^docker\\.io\\/library\\/.*:latest$', '^x{1,2}$'],
    );
    assert.equal(filters[0]!.test('docker.io/library/nginx:latest'), true);
    assert.equal(filters[0]!.test('docker.io/library/nginx:1.27'), false);
    assert.equal(filters[1]!.test('xx'), true);
    assert.equal(filters[1]!.test('xxx'), false);
  });

  const configureCases: {
    name: string;
    argv: string[];
    env?: Record<string, string>;
    key: keyof ConfigureConfig;
    want: unknown;
  }[] = [
    {
      name: 'targets normalised to origins',
      argv: ['--mirror-targets=http://10.0.0.7:29999/,https://[fd00::7]:443,HTTP://Node-1:80'],
      key: 'mirrorTargets',
      want: ['http://10.0.0.7:29999', 'https://[fd00::7]', 'http://node-1'],
    },
    { name: 'boolean bare', argv: ['--prepend-existing'], key: 'prependExisting', want: true },
    { name: 'boolean =true', argv: ['--prepend-existing=true'], key: 'prependExisting', want: true },
    { name: 'boolean =false', argv: ['--resolve=false'], key: 'resolve', want: false },
    { name: 'boolean env', argv: [], env: { PEILI_RESOLVE: 'false' }, key: 'resolve', want: false },
    {
      name: 'boolean flag beats env',
      argv: ['--resolve'],
      env: { PEILI_RESOLVE: 'false' },
      key: 'resolve',
      want: true,
    },
    {
      name: 'containerd version',
      argv: ['--containerd-version=1.7.2'],
      key: 'containerdVersion',
      want: '1.7.2',
    },
    {
      name: 'containerd version v',
      argv: ['--containerd-version=v2.0.0'],
      key: 'containerdVersion',
      want: 'v2.0.0',
    },
    {
      name: 'config path env',
      argv: [],
      env: { PEILI_CONFIG_PATH: '/etc/cri/conf.d/hosts' },
      key: 'configPath',
      want: '/etc/cri/conf.d/hosts',
    },
    { name: 'dial timeout', argv: ['--dial-timeout=1s'], key: 'dialTimeout', want: 1000 },
  ];
  for (const c of configureCases) {
    it(`configure: ${c.name}`, () => {
      const argv = c.argv.some((a) => a.startsWith('--mirror-targets'))
        ? c.argv
        : ['--mirror-targets=http://127.0.0.1:29999', ...c.argv];
      assert.deepEqual(configure(argv, c.env)[c.key], c.want);
    });
  }

  it('mirror targets from the environment', () => {
    assert.deepEqual(configure([], { PEILI_MIRROR_TARGETS: 'http://10.0.0.7:29999' }).mirrorTargets, [
      'http://10.0.0.7:29999',
    ]);
  });
});

describe('parseConfig errors', () => {
  const cases: { argv: string[]; env?: Record<string, string>; message: string }[] = [
    {
      argv: ['registry', '--lookup-timeout=fast'],
      message: '--lookup-timeout: expected a duration like 20ms or 5s, got "fast"',
    },
    {
      argv: ['registry', '--lookup-timeout=20'],
      message: '--lookup-timeout: expected a duration like 20ms or 5s, got "20"',
    },
    {
      argv: ['registry', '--lookup-timeout=-5s'],
      message: '--lookup-timeout: expected a duration like 20ms or 5s, got "-5s"',
    },
    {
      argv: ['registry'],
      env: { PEILI_LOOKUP_TIMEOUT: 'soon' },
      message:
        '--lookup-timeout (from PEILI_LOOKUP_TIMEOUT): expected a duration like 20ms or 5s, got "soon"',
    },
    { argv: ['registry', '--lookup-timeout'], message: '--lookup-timeout: missing value' },
    {
      argv: ['registry', '--max-concurrent-requests=0'],
      message: '--max-concurrent-requests: expected a whole number from 1 to 999999999, got "0"',
    },
    {
      argv: ['registry', '--max-concurrent-requests=1.5'],
      message: '--max-concurrent-requests: expected a whole number from 1 to 999999999, got "1.5"',
    },
    {
      argv: ['registry', '--private-registries=ghcr.io,https://x'],
      message:
        '--private-registries: expected registry hosts like docker.io or 127.0.0.1:5000, got "https://x"',
    },
    {
      argv: ['registry', '--lookup-timeout', '--log-level=info'],
      message: '--lookup-timeout: missing value',
    },
    { argv: ['registry', '--nope=1'], message: '--nope: unknown flag for "registry"' },
    {
      argv: ['cleanup', '--mirror-targets=http://x:1'],
      message: '--mirror-targets: not a flag of "cleanup"',
    },
    {
      argv: ['registry', 'extra'],
      message: 'unexpected argument "extra" for "registry"; flags look like --name=value',
    },
    {
      argv: ['configure', '--prepend-existing', 'false', '--mirror-targets=http://x:1'],
      message: 'unexpected argument "false" for "configure"; flags look like --name=value',
    },
    {
      argv: ['registry', '--log-level=loud'],
      message: '--log-level: expected one of fatal, error, warn, info, debug, trace, got "loud"',
    },
    {
      argv: ['registry', '--log-level=info', '--log-level=debug'],
      message: '--log-level: given more than once',
    },
    {
      argv: ['registry', '--resolve-tags=sometimes'],
      message: '--resolve-tags: expected one of upstream-down, always, never, got "sometimes"',
    },
    {
      argv: ['registry', '--registry-addr=5000'],
      message: '--registry-addr: expected an address like :5000, 127.0.0.2:5000 or [::1]:5000, got "5000"',
    },
    {
      argv: ['registry', '--registry-addr=:0'],
      message: '--registry-addr: expected an address like :5000, 127.0.0.2:5000 or [::1]:5000, got ":0"',
    },
    {
      argv: ['registry', '--registry-addr=:65536'],
      message: '--registry-addr: expected an address like :5000, 127.0.0.2:5000 or [::1]:5000, got ":65536"',
    },
    {
      argv: ['registry', '--registry-addr=::1:5000'],
      message:
        '--registry-addr: expected an address like :5000, 127.0.0.2:5000 or [::1]:5000, got "::1:5000"',
    },
    {
      argv: ['registry', '--registry-addr=[::1]'],
      message: '--registry-addr: expected an address like :5000, 127.0.0.2:5000 or [::1]:5000, got "[::1]"',
    },
    {
      argv: ['registry', '--members=:5001'],
      message: '--members: expected host:port items like 10.0.0.7:5001, got ":5001"',
    },
    {
      argv: ['registry', '--members=10.0.0.1:5001,,10.0.0.2:5001'],
      message: '--members: empty item in comma-separated list',
    },
    {
      argv: ['registry', '--advertise-host=10.0.0.1:5000'],
      message: '--advertise-host: expected an IP address or a host name without port, got "10.0.0.1:5000"',
    },
    {
      argv: ['registry', '--mirrored-registries=docker.io/library'],
      message:
        '--mirrored-registries: expected registry hosts like docker.io or 127.0.0.1:5000, got "docker.io/library"',
    },
    {
      argv: ['registry', '--mirrored-registries=..'],
      message: '--mirrored-registries: expected registry hosts like docker.io or 127.0.0.1:5000, got ".."',
    },
    {
      argv: ['registry', '--resolve-tags-filter=a,(b'],
      message:
        '--resolve-tags-filter: invalid regular expression "(b": Invalid regular expression: /(b/: Unterminated group',
    },
    { argv: ['registry', '--containerd-sock='], message: '--containerd-sock: expected a path, got ""' },
    { argv: ['configure'], message: '--mirror-targets: required (or set PEILI_MIRROR_TARGETS)' },
    {
      argv: ['configure', '--mirror-targets='],
      message: '--mirror-targets: expected at least one URL like http://10.0.0.7:29999',
    },
    {
      argv: ['configure', '--mirror-targets=10.0.0.7:29999'],
      message: '--mirror-targets: expected a URL like http://10.0.0.7:29999, got "10.0.0.7:29999"',
    },
    {
      argv: ['configure', '--mirror-targets=ftp://10.0.0.7:29999'],
      message: '--mirror-targets: expected an http or https URL, got "ftp://10.0.0.7:29999"',
    },
    {
      argv: ['configure', '--mirror-targets=not a url'],
      message: '--mirror-targets: expected a URL like http://10.0.0.7:29999, got "not a url"',
    },
    {
      argv: ['configure', '--mirror-targets=http://10.0.0.7:99999'],
      message: '--mirror-targets: expected a URL like http://10.0.0.7:29999, got "http://10.0.0.7:99999"',
    },
    {
      argv: ['configure', '--mirror-targets=http://10.0.0.7:0'],
      message: '--mirror-targets: expected a port between 1 and 65535, got "http://10.0.0.7:0"',
    },
    {
      argv: ['configure', '--mirror-targets=http://10.0.0.7:1/v2'],
      message: '--mirror-targets: expected a URL without path, query or fragment, got "http://10.0.0.7:1/v2"',
    },
    {
      argv: ['configure', '--mirror-targets=http://u:p@10.0.0.7:1'],
      message: '--mirror-targets: credentials are not allowed in a mirror URL, got "http://u:p@10.0.0.7:1"',
    },
    {
      argv: ['configure', '--mirror-targets=http://x:1', '--resolve=yes'],
      message: '--resolve: expected true or false, got "yes"',
    },
    {
      argv: ['configure', '--mirror-targets=http://x:1', '--containerd-version=latest'],
      message: '--containerd-version: expected a version like 1.7.2, got "latest"',
    },
    {
      argv: ['configure', '--mirror-targets=http://x:1', '--dial-timeout=1 s'],
      message: '--dial-timeout: expected a duration like 20ms or 5s, got "1 s"',
    },
    {
      argv: ['registry', '--peer-tls-cert-file=/c', '--peer-tls-key-file=/k', '--peer-tls-ca-file=/a'],
      message:
        '--peer-tls-name: required with --peer-tls-cert-file (peer TLS needs all of --peer-tls-cert-file, --peer-tls-key-file, --peer-tls-ca-file, --peer-tls-name)',
    },
    {
      argv: ['registry', '--peer-tls-ca-file=/a'],
      message:
        '--peer-tls-cert-file: required with --peer-tls-ca-file (peer TLS needs all of --peer-tls-cert-file, --peer-tls-key-file, --peer-tls-ca-file, --peer-tls-name)',
    },
    {
      argv: ['registry', '--peer-tls-name=peili-peer', '--peer-tls-cert-file=/c', '--peer-tls-ca-file=/a'],
      message:
        '--peer-tls-key-file: required with --peer-tls-cert-file (peer TLS needs all of --peer-tls-cert-file, --peer-tls-key-file, --peer-tls-ca-file, --peer-tls-name)',
    },
    {
      argv: ['registry', '--peer-tls-name=10.0.0.7'],
      message: '--peer-tls-name: expected a DNS name like peili-peer.kube-system, got "10.0.0.7"',
    },
    {
      argv: ['registry', '--peer-tls-name=*.peers'],
      message: '--peer-tls-name: expected a DNS name like peili-peer.kube-system, got "*.peers"',
    },
    {
      argv: ['registry', '--peer-tls-key-file='],
      message: '--peer-tls-key-file: expected a path, got ""',
    },
    {
      argv: ['serve'],
      message: 'unknown subcommand "serve"; expected one of registry, configure, cleanup, version',
    },
  ];
  for (const c of cases) {
    it(c.message, () => {
      assert.throws(
        () => parseConfig(c.argv, c.env ?? {}, oneInterface),
        (error: unknown) => error instanceof ConfigError && error.message === c.message,
      );
    });
  }

  it('advertise host: no candidate', () => {
    assert.throws(
      () => parseConfig(['registry'], {}, noInterfaces),
      new ConfigError('--advertise-host: no non-internal IPv4 address found; set --advertise-host or POD_IP'),
    );
  });

  it('advertise host: bad POD_IP', () => {
    assert.throws(
      () => parseConfig(['registry'], { POD_IP: 'a b' }, noInterfaces),
      new ConfigError('POD_IP: expected an IP address, got "a b"'),
    );
  });

  it('environment of flags of other subcommands is ignored', () => {
    assert.deepEqual(
      parseConfig(['cleanup'], { PEILI_MIRROR_TARGETS: 'nonsense', PEILI_LOOKUP_TIMEOUT: 'x' }),
      {
        command: 'cleanup',
        logLevel: 'info',
        configPath: '/etc/containerd/certs.d',
      },
    );
  });
});

describe('help and the flag table', () => {
  it('--help per subcommand lists exactly its flags', () => {
    for (const command of SUBCOMMANDS) {
      const help = parseConfig([command, '--help'], {});
      assert.equal(help.command, 'help');
      if (help.command !== 'help') return;
      assert.equal(help.usage, usage(command));
      const listed = [...help.usage.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]);
      assert.deepEqual(listed, [...flagsFor(command).map((f) => f.name), 'help']);
    }
  });

  it('--help wins over bad flags; bare peili prints the overview', () => {
    assert.equal(parseConfig(['configure', '--help', '--nope'], {}).command, 'help');
    const overview = parseConfig([], {});
    assert.equal(overview.command === 'help' && overview.usage, usage());
    assert.match(usage(), /^ {2}configure +write containerd's hosts.toml files/m);
  });

  it('help text shows defaults and env names', () => {
    assert.match(
      usage('registry'),
      /^ {2}--lookup-timeout <value>\n {6}budget for the first owner answer of a lookup \(default: 20ms; env PEILI_LOOKUP_TIMEOUT\)$/m,
    );
    assert.match(
      usage('configure'),
      /^ {2}--mirror-targets <value>\n {6}.*\(required; env PEILI_MIRROR_TARGETS\)$/m,
    );
    assert.match(usage('configure'), /^ {2}--prepend-existing\[=true\|false\]$/m);
  });

  it('env names and keys follow the naming rule; names are unique', () => {
    const names = new Set<string>();
    for (const spec of FLAGS) {
      assert.ok(!names.has(spec.name), spec.name);
      names.add(spec.name);
      assert.equal(spec.env, 'PEILI_' + spec.name.toUpperCase().replaceAll('-', '_'));
      assert.equal(
        spec.key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()),
        spec.name,
      );
    }
  });
});

describe('helpers', () => {
  it('parseDuration', () => {
    const table: [string, number | undefined][] = [
      ['250ms', 250],
      ['5s', 5000],
      ['2m', 120_000],
      ['0.5s', 500],
      ['1.0004s', 1000],
      ['5', undefined],
      ['s', undefined],
      ['5sec', undefined],
      ['', undefined],
    ];
    for (const [text, want] of table) assert.equal(parseDuration(text), want, text);
  });

  it('firstExternalIPv4 sorts interfaces by name and skips internal ones', () => {
    assert.equal(firstExternalIPv4(oneInterface.networkInterfaces()), '10.1.2.3');
    assert.equal(firstExternalIPv4({}), undefined);
  });
});
