// The chart through a real helm binary: lint and template for the default, Talos and
// everything-enabled values; every rendered object validated against its schema and checked for
// unknown fields; the ports, selectors, mounts and flags cross-checked between objects; the
// daemon's own flag parser run on the rendered command lines; invalid values rejected by
// values.schema.json with helm's message.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  FLAGS,
  parseConfig,
  type CleanupConfig,
  type ConfigureConfig,
  type RegistryConfig,
} from '../src/config.js';
import { CHART_DIR, RELEASE, parseManifests, renderChart, runHelm, type K8sObject } from './helm.js';
import { typeKey, unknownFields, validateObject } from './k8s-validate.js';

// Minimal shapes of the parts the checks read; the schemas have already vouched for the rest.
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number; hostPort?: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe?: { httpGet?: { path: string; port: string } };
  startupProbe?: { httpGet?: { path: string; port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: {
    name: string;
    hostPath?: { path: string; type: string };
    configMap?: { name: string };
    secret?: { secretName: string };
  }[];
  tolerations?: unknown[];
  nodeSelector?: Record<string, string>;
  affinity?: unknown;
  priorityClassName?: string;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  imagePullSecrets?: { name: string }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}
interface Workload extends K8sObject {
  spec: {
    selector?: { matchLabels: Record<string, string> };
    template: PodTemplate;
    updateStrategy?: unknown;
  };
}
interface ServiceObject extends K8sObject {
  spec: {
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    selector: Record<string, string>;
    ports: { name: string; port: number; targetPort: string }[];
  };
}
interface ServiceMonitorObject extends K8sObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    namespaceSelector: { matchNames: string[] };
    endpoints: {
      port: string;
      path: string;
      interval: string;
      scrapeTimeout: string;
      relabelings?: Record<string, unknown>[];
    }[];
  };
}

const VALUES = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Values;
const EVERYTHING_FILE = new URL('./fixtures/everything-values.yaml', import.meta.url).pathname;
const TALOS_FILE = join(CHART_DIR, 'ci/talos-values.yaml');
const EVERYTHING = parseYaml(readFileSync(EVERYTHING_FILE, 'utf8')) as Partial<Values>;
const TALOS = parseYaml(readFileSync(TALOS_FILE, 'utf8')) as Partial<Values>;
const APP_VERSION = (parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { appVersion: string })
  .appVersion;

/** The values keys the checks read (the full contract is values.schema.json). */
interface Values {
  image: { repository: string; tag: string; digest: string };
  clusterDomain: string;
  priorityClassName: string;
  tolerations: unknown[];
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  peili: {
    containerdSock: string;
    containerdNamespace: string;
    containerdContentPath: string;
    containerdRegistryConfigPath: string;
    mirroredRegistries: string[];
    prependExisting: boolean;
    resolveTags: string;
    resolveTagsFilter: string[];
    lookupTimeout: string;
    logLevel: string;
    membersRefresh: string;
    dialTimeout: string;
    upstreamProbeTimeout: string;
    shutdownTimeout: string;
    containerdVersion: string;
    nodeOptions: string;
    maxConcurrentRequests: number;
    privateRegistries: string[];
  };
  service: {
    registry: { port: number; hostPort: number };
    router: { port: number };
    metrics: { port: number };
  };
  serviceMonitor: {
    interval: string;
    scrapeTimeout: string;
    labels: Record<string, string>;
    relabelings: unknown[];
  };
  grafanaDashboard: { labels: Record<string, string>; folder: string };
  peerAuth: { existingSecret: string; secretKey: string };
  peerTls: {
    enabled: boolean;
    existingSecret: string;
    name: string;
    certKey: string;
    keyKey: string;
    caKey: string;
    certificate: {
      create: boolean;
      issuerRef: { name: string; kind: string; group: string };
      duration: string;
      renewBefore: string;
    };
  };
  extraArgs: string[];
  cleanupHook: { timeoutSeconds: number };
}

/** values.yaml overlaid with a values file (objects merged, arrays and scalars replaced: helm's rule). */
function merge<T>(base: T, over: unknown): T {
  if (over === undefined) return base;
  if (
    base === null ||
    typeof base !== 'object' ||
    Array.isArray(base) ||
    over === null ||
    typeof over !== 'object' ||
    Array.isArray(over)
  ) {
    return over as T;
  }
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(over as Record<string, unknown>))
    out[key] = merge(out[key], value);
  return out as T;
}

/** Durations in the daemon's parsed config are milliseconds. */
function ms(text: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(text);
  assert.ok(match, `test values use simple durations, got ${text}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
}

function find<T extends K8sObject>(objects: K8sObject[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(
    found,
    `no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
  );
  return found as T;
}

function container(spec: PodSpec, name: string, init = false): Container {
  const list = (init ? spec.initContainers : spec.containers) ?? [];
  const found = list.find((c) => c.name === name);
  assert.ok(found, `no ${init ? 'init ' : ''}container ${name}`);
  return found;
}

/** Substitutes Kubernetes' `$(VAR)` references the way the kubelet does, from the container's env. */
function expand(args: readonly string[], vars: Record<string, string>): string[] {
  return args.map((arg) =>
    arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => {
      assert.ok(name in vars, `argument ${arg} references $(${name}) which the test does not provide`);
      return vars[name] ?? whole;
    }),
  );
}

function isSubset(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

function hookAnnotations(obj: K8sObject): { hook: string; weight: number; policy: string } {
  const annotations = obj.metadata.annotations ?? {};
  return {
    hook: annotations['helm.sh/hook'] ?? '',
    weight: Number(annotations['helm.sh/hook-weight']),
    policy: annotations['helm.sh/hook-delete-policy'] ?? '',
  };
}

interface Scenario {
  readonly name: string;
  readonly args: readonly string[];
  readonly values: Values;
  readonly fullname: string;
  /** Every object expected, as `Kind/name`, sorted. */
  readonly objects: readonly string[];
}

const hookObjects = (base: string): string[] => [
  `ConfigMap/${base}-cleanup`,
  `DaemonSet/${base}-cleanup`,
  `Job/${base}-cleanup-wait`,
  `Role/${base}-cleanup`,
  `RoleBinding/${base}-cleanup`,
  `ServiceAccount/${base}-cleanup`,
];

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'default values',
    args: [],
    values: VALUES,
    fullname: 'peili',
    objects: [
      'DaemonSet/peili',
      'Service/peili-metrics',
      'Service/peili-peers',
      ...hookObjects('peili'),
    ].sort(),
  },
  {
    name: 'Talos values (ci/talos-values.yaml)',
    args: ['-f', TALOS_FILE],
    values: merge(VALUES, TALOS),
    fullname: 'peili',
    objects: [
      'DaemonSet/peili',
      'Service/peili-metrics',
      'Service/peili-peers',
      ...hookObjects('peili'),
    ].sort(),
  },
  {
    name: 'everything enabled',
    args: ['-f', EVERYTHING_FILE],
    values: merge(VALUES, EVERYTHING),
    fullname: 'mirror',
    objects: [
      'Certificate/mirror-peer-tls',
      'ConfigMap/mirror-dashboard',
      'DaemonSet/mirror',
      'Service/mirror-metrics',
      'Service/mirror-peers',
      'ServiceMonitor/mirror',
      ...hookObjects('mirror'),
    ].sort(),
  },
];

const NODE_IP = '10.1.2.3';
const POD_IP = '10.244.7.9';

describe('chart: helm lint', () => {
  for (const scenario of SCENARIOS) {
    it(`passes --strict with ${scenario.name}`, async () => {
      const result = await runHelm(['lint', '--strict', CHART_DIR, ...scenario.args]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }
});

for (const scenario of SCENARIOS) {
  describe(`chart: helm template with ${scenario.name}`, async () => {
    const objects = await renderChart(scenario.args);
    const v = scenario.values;
    const base = scenario.fullname;
    const ds = find<Workload>(objects, 'DaemonSet', base);
    const pod = ds.spec.template.spec;
    const registry = container(pod, 'registry');
    const configure = container(pod, 'configure', true);
    const peers = find<ServiceObject>(objects, 'Service', `${base}-peers`);
    const metricsService = find<ServiceObject>(objects, 'Service', `${base}-metrics`);

    it('renders exactly the expected objects, all in the release namespace', () => {
      assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), scenario.objects);
      for (const o of objects)
        assert.equal(o.metadata.namespace, RELEASE.namespace, `${o.kind}/${o.metadata.name}`);
    });

    // No model installed for these: checked field by field in their own tests.
    const unmodelled = new Set(['GrafanaDashboard', 'Certificate']);
    it('every object passes its schema (kubernetes-models, prometheus-operator)', () => {
      for (const o of objects) if (!unmodelled.has(o.kind)) validateObject(o);
    });

    it('no object carries a field its schema does not know', () => {
      for (const o of objects) {
        if (unmodelled.has(o.kind)) continue;
        assert.deepEqual(unknownFields(o), [], `${typeKey(o)} ${o.metadata.name}`);
      }
    });

    it('every name is a valid DNS label of at most 63 characters', () => {
      for (const o of objects) assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    });

    it('runs on every Linux node with the node-critical priority and all taints tolerated', () => {
      assert.deepEqual(pod.tolerations, v.tolerations);
      assert.equal(pod.priorityClassName, v.priorityClassName);
      assert.equal(pod.nodeSelector?.['kubernetes.io/os'], 'linux');
      assert.equal(pod.automountServiceAccountToken, false);
    });

    it('uses the image tag (or the appVersion, or the digest)', () => {
      const expected = v.image.digest
        ? `${v.image.repository}@${v.image.digest}`
        : `${v.image.repository}:${v.image.tag || APP_VERSION}`;
      for (const c of [registry, configure]) assert.equal(c.image, expected);
    });

    it('ports agree between container, hostPort, Services, flags and hosts.toml target', () => {
      const port = (name: string) => registry.ports?.find((p) => p.name === name);
      assert.deepEqual(port('registry'), {
        name: 'registry',
        containerPort: v.service.registry.port,
        hostPort: v.service.registry.hostPort,
        protocol: 'TCP',
      });
      assert.deepEqual(port('router'), {
        name: 'router',
        containerPort: v.service.router.port,
        protocol: 'TCP',
      });
      assert.deepEqual(port('metrics'), {
        name: 'metrics',
        containerPort: v.service.metrics.port,
        protocol: 'TCP',
      });
      // Only the registry is published on the node.
      assert.deepEqual(
        registry.ports?.filter((p) => p.hostPort !== undefined).map((p) => p.name),
        ['registry'],
      );

      assert.equal(peers.spec.clusterIP, 'None');
      assert.equal(peers.spec.publishNotReadyAddresses, true);
      assert.deepEqual(peers.spec.ports, [
        { name: 'registry', port: v.service.registry.port, targetPort: 'registry', protocol: 'TCP' },
        { name: 'router', port: v.service.router.port, targetPort: 'router', protocol: 'TCP' },
      ]);
      assert.deepEqual(metricsService.spec.ports, [
        { name: 'metrics', port: v.service.metrics.port, targetPort: 'metrics', protocol: 'TCP' },
      ]);

      const daemon = parseConfig(expand(registry.args ?? [], { POD_IP }), {}) as RegistryConfig;
      assert.deepEqual(daemon.registryAddr, { host: '0.0.0.0', port: v.service.registry.port });
      assert.deepEqual(daemon.routerAddr, { host: '0.0.0.0', port: v.service.router.port });
      assert.deepEqual(daemon.metricsAddr, { host: '0.0.0.0', port: v.service.metrics.port });

      const conf = parseConfig(expand(configure.args ?? [], { NODE_IP }), {}) as ConfigureConfig;
      assert.deepEqual(conf.mirrorTargets, [`http://${NODE_IP}:${v.service.registry.hostPort}`]);

      for (const probe of [registry.readinessProbe, registry.startupProbe, registry.livenessProbe]) {
        assert.equal(probe?.httpGet?.port, 'metrics');
      }
      assert.equal(registry.readinessProbe?.httpGet?.path, '/readyz');
      assert.equal(registry.startupProbe?.httpGet?.path, '/readyz');
      assert.equal(registry.livenessProbe?.httpGet?.path, '/livez');
    });

    it('selectors: DaemonSet and Services select the daemon pods, never the cleanup pods', () => {
      const labels = ds.spec.template.metadata.labels;
      const cleanup = find<Workload>(objects, 'DaemonSet', `${base}-cleanup`);
      const cleanupLabels = cleanup.spec.template.metadata.labels;
      assert.ok(ds.spec.selector && isSubset(ds.spec.selector.matchLabels, labels));
      assert.ok(cleanup.spec.selector && isSubset(cleanup.spec.selector.matchLabels, cleanupLabels));
      for (const selector of [
        ds.spec.selector.matchLabels,
        peers.spec.selector,
        metricsService.spec.selector,
      ]) {
        assert.ok(isSubset(selector, labels), JSON.stringify(selector));
        assert.ok(
          !isSubset(selector, cleanupLabels),
          `selector ${JSON.stringify(selector)} also matches the cleanup pods`,
        );
      }
    });

    it('the init container runs configure with every value mapped to its flag', () => {
      const env = Object.fromEntries(
        (configure.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
      );
      assert.deepEqual(env, { NODE_IP: 'status.hostIP' });
      const conf = parseConfig(expand(configure.args ?? [], { NODE_IP }), {}) as ConfigureConfig;
      assert.deepEqual(
        { ...conf },
        {
          command: 'configure',
          logLevel: v.peili.logLevel,
          containerdSock: v.peili.containerdSock,
          mirroredRegistries: v.peili.mirroredRegistries,
          configPath: `/host${v.peili.containerdRegistryConfigPath}`,
          mirrorTargets: [`http://${NODE_IP}:${v.service.registry.hostPort}`],
          prependExisting: v.peili.prependExisting,
          resolve: v.peili.resolveTags !== 'never',
          dialTimeout: ms(v.peili.dialTimeout),
          containerdVersion: v.peili.containerdVersion || undefined,
        },
      );
    });

    it('the daemon container runs registry with every value mapped to its flag', () => {
      const env = Object.fromEntries(
        (registry.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
      );
      assert.deepEqual(env, {
        POD_IP: 'status.podIP',
        ...(v.peili.nodeOptions ? { NODE_OPTIONS: v.peili.nodeOptions } : {}),
      });
      const daemon = parseConfig(expand(registry.args ?? [], { POD_IP }), {}) as RegistryConfig;
      const members = v.extraArgs.flatMap((arg) =>
        arg.startsWith('--members=') ? arg.slice(10).split(',') : [],
      );
      assert.deepEqual(
        { ...daemon, resolveTagsFilter: daemon.resolveTagsFilter.map((r) => r.source) },
        {
          command: 'registry',
          logLevel: v.peili.logLevel,
          containerdSock: v.peili.containerdSock,
          containerdNamespace: v.peili.containerdNamespace,
          containerdContentPath: v.peili.containerdContentPath,
          registryAddr: { host: '0.0.0.0', port: v.service.registry.port },
          routerAddr: { host: '0.0.0.0', port: v.service.router.port },
          metricsAddr: { host: '0.0.0.0', port: v.service.metrics.port },
          advertiseHost: POD_IP,
          members: members.map((m) => ({ host: m.split(':')[0], port: Number(m.split(':')[1]) })),
          membersDns: `${base}-peers.${RELEASE.namespace}.svc.${v.clusterDomain}`,
          membersRefresh: ms(v.peili.membersRefresh),
          mirroredRegistries: v.peili.mirroredRegistries,
          lookupTimeout: ms(v.peili.lookupTimeout),
          resolveTags: v.peili.resolveTags,
          resolveTagsFilter: v.peili.resolveTagsFilter.map((r) => new RegExp(r).source),
          upstreamProbeTimeout: ms(v.peili.upstreamProbeTimeout),
          shutdownTimeout: ms(v.peili.shutdownTimeout),
          maxConcurrentRequests: v.peili.maxConcurrentRequests,
          privateRegistries: v.peili.privateRegistries,
          peerSecretFile: v.peerAuth.existingSecret
            ? `/etc/peili/peer-auth/${v.peerAuth.secretKey}`
            : undefined,
          peerTls: v.peerTls.enabled
            ? {
                certFile: `/etc/peili/peer-tls/${v.peerTls.certKey}`,
                keyFile: `/etc/peili/peer-tls/${v.peerTls.keyKey}`,
                caFile: `/etc/peili/peer-tls/${v.peerTls.caKey}`,
                name: v.peerTls.name || `${base}-peer.${RELEASE.namespace}`,
              }
            : undefined,
        },
      );
    });

    it('mounts: the socket at its own path, the content store read-only, the config path only in the init container', () => {
      const volumes = new Map((pod.volumes ?? []).map((vol) => [vol.name, vol]));
      assert.deepEqual(volumes.get('containerd-sock')?.hostPath, {
        path: v.peili.containerdSock,
        type: 'Socket',
      });
      assert.deepEqual(volumes.get('containerd-content')?.hostPath, {
        path: v.peili.containerdContentPath,
        type: 'Directory',
      });
      assert.deepEqual(volumes.get('registry-config')?.hostPath, {
        path: v.peili.containerdRegistryConfigPath,
        type: 'DirectoryOrCreate',
      });
      const mounts = (c: Container) =>
        Object.fromEntries((c.volumeMounts ?? []).map((m) => [m.name, [m.mountPath, m.readOnly === true]]));
      const expectedDaemonMounts: Record<string, [string, boolean]> = {
        'containerd-sock': [v.peili.containerdSock, false],
        'containerd-content': [v.peili.containerdContentPath, true],
      };
      if (v.peerAuth.existingSecret) expectedDaemonMounts['peer-auth'] = ['/etc/peili/peer-auth', true];
      if (v.peerTls.enabled) {
        expectedDaemonMounts['peer-tls'] = ['/etc/peili/peer-tls', true];
        const keys = [v.peerTls.certKey, v.peerTls.keyKey, v.peerTls.caKey];
        assert.deepEqual(volumes.get('peer-tls')?.secret, {
          secretName: v.peerTls.existingSecret || `${base}-peer-tls`,
          defaultMode: 0o400,
          items: keys.map((key) => ({ key, path: key })),
        });
      }
      assert.deepEqual(mounts(registry), expectedDaemonMounts);
      assert.deepEqual(mounts(configure), {
        'containerd-sock': [v.peili.containerdSock, false],
        'registry-config': [`/host${v.peili.containerdRegistryConfigPath}`, false],
      });
      for (const c of [registry, configure]) {
        for (const m of c.volumeMounts ?? [])
          assert.ok(volumes.has(m.name), `${c.name} mounts unknown volume ${m.name}`);
      }
    });

    it('every container: read-only root, no privilege escalation, every capability dropped', () => {
      for (const workload of objects.filter(
        (o): o is Workload => o.kind === 'DaemonSet' || o.kind === 'Job',
      )) {
        const spec = workload.spec.template.spec;
        for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
          const sc = c.securityContext ?? {};
          const where = `${workload.kind}/${workload.metadata.name} ${c.name}`;
          assert.equal(sc.readOnlyRootFilesystem, true, where);
          assert.equal(sc.allowPrivilegeEscalation, false, where);
          assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, where);
          assert.notEqual(sc.privileged, true, where);
          assert.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' }, where);
          // Root only where host files owned by root are touched.
          const needsRoot = (c.volumeMounts ?? []).some(
            (m) => m.name === 'containerd-sock' || m.name === 'registry-config',
          );
          assert.equal(sc.runAsUser, needsRoot ? 0 : 1000, where);
        }
      }
    });

    it('memory request equals the limit, from the values', () => {
      assert.deepEqual(registry.resources, v.resources);
      assert.equal(registry.resources?.requests?.memory, registry.resources?.limits?.memory);
    });

    it('the post-delete hook cleans every node and waits for all of them', () => {
      const cleanup = find<Workload>(objects, 'DaemonSet', `${base}-cleanup`);
      const job = find<Workload>(objects, 'Job', `${base}-cleanup-wait`);
      const role = find<K8sObject & { rules: unknown[] }>(objects, 'Role', `${base}-cleanup`);
      const binding = find<K8sObject & { roleRef: { name: string }; subjects: { name: string }[] }>(
        objects,
        'RoleBinding',
        `${base}-cleanup`,
      );
      const script = find<K8sObject & { data: Record<string, string> }>(
        objects,
        'ConfigMap',
        `${base}-cleanup`,
      );
      const account = find(objects, 'ServiceAccount', `${base}-cleanup`);

      for (const o of [role, binding, script, account])
        assert.deepEqual(hookAnnotations(o), {
          hook: 'post-delete',
          weight: -10,
          policy: 'before-hook-creation,hook-succeeded',
        });
      assert.deepEqual(hookAnnotations(cleanup), {
        hook: 'post-delete',
        weight: 0,
        policy: 'before-hook-creation,hook-succeeded',
      });
      assert.deepEqual(hookAnnotations(job), {
        hook: 'post-delete',
        weight: 10,
        policy: 'before-hook-creation,hook-succeeded',
      });

      // The cleanup pods land where the daemon pods ran.
      const cpod = cleanup.spec.template.spec;
      assert.deepEqual(cpod.tolerations, pod.tolerations);
      assert.deepEqual(cpod.nodeSelector, pod.nodeSelector);
      assert.deepEqual(cpod.affinity, pod.affinity);
      const clean = container(cpod, 'cleanup', true);
      assert.equal(clean.image, registry.image);
      const parsed = parseConfig(clean.args ?? [], {}) as CleanupConfig;
      assert.deepEqual(
        { ...parsed },
        {
          command: 'cleanup',
          logLevel: v.peili.logLevel,
          configPath: `/host${v.peili.containerdRegistryConfigPath}`,
        },
      );
      assert.deepEqual(clean.volumeMounts, [
        { name: 'registry-config', mountPath: `/host${v.peili.containerdRegistryConfigPath}` },
      ]);
      assert.deepEqual(cpod.volumes?.find((vol) => vol.name === 'registry-config')?.hostPath, {
        path: v.peili.containerdRegistryConfigPath,
        type: 'DirectoryOrCreate',
      });

      // The Job may read that one DaemonSet and nothing else.
      assert.deepEqual(role.rules, [
        {
          apiGroups: ['apps'],
          resources: ['daemonsets'],
          resourceNames: [`${base}-cleanup`],
          verbs: ['get'],
        },
      ]);
      assert.equal(binding.roleRef.name, role.metadata.name);
      assert.deepEqual(
        binding.subjects.map((s) => s.name),
        [account.metadata.name],
      );
      const jpod = job.spec.template.spec;
      assert.equal(jpod.serviceAccountName, account.metadata.name);
      const wait = container(jpod, 'wait');
      assert.deepEqual(wait.command, ['node', '/scripts/wait-for-cleanup.mjs']);
      assert.equal(wait.env?.find((e) => e.name === 'CLEANUP_DAEMONSET')?.value, `${base}-cleanup`);
      assert.equal(
        wait.env?.find((e) => e.name === 'WAIT_TIMEOUT_SECONDS')?.value,
        String(v.cleanupHook.timeoutSeconds),
      );
      assert.equal(
        (job.spec as { activeDeadlineSeconds?: number }).activeDeadlineSeconds,
        v.cleanupHook.timeoutSeconds + 30,
      );
      assert.equal(
        jpod.volumes?.find((vol) => vol.name === 'scripts')?.configMap?.name,
        script.metadata.name,
      );
      assert.equal(
        script.data['wait-for-cleanup.mjs'],
        readFileSync(join(CHART_DIR, 'files/wait-for-cleanup.mjs'), 'utf8').trimEnd(),
      );
    });
  });
}

describe('chart: optional parts', () => {
  it('everything enabled: the ServiceMonitor scrapes the metrics Service port with the values', async () => {
    const objects = await renderChart(['-f', EVERYTHING_FILE]);
    const v = merge(VALUES, EVERYTHING);
    const sm = find<ServiceMonitorObject>(objects, 'ServiceMonitor', 'mirror');
    const svc = find<ServiceObject>(objects, 'Service', 'mirror-metrics');
    assert.ok(isSubset(sm.spec.selector.matchLabels, svc.metadata.labels ?? {}));
    assert.deepEqual(sm.spec.namespaceSelector.matchNames, [RELEASE.namespace]);
    assert.equal(sm.spec.endpoints.length, 1);
    const [endpoint] = sm.spec.endpoints;
    assert.ok(svc.spec.ports.some((p) => p.name === endpoint?.port));
    assert.equal(endpoint?.path, '/metrics');
    assert.equal(endpoint?.interval, v.serviceMonitor.interval);
    assert.equal(endpoint?.scrapeTimeout, v.serviceMonitor.scrapeTimeout);
    assert.deepEqual(endpoint?.relabelings, [
      { action: 'replace', sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' },
      ...v.serviceMonitor.relabelings,
    ]);
    assert.ok(isSubset(v.serviceMonitor.labels, sm.metadata.labels ?? {}));
  });

  it('everything enabled: the dashboard ConfigMap carries the sidecar label, the folder and the dashboard', async () => {
    const objects = await renderChart(['-f', EVERYTHING_FILE]);
    const v = merge(VALUES, EVERYTHING);
    const cm = find<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap', 'mirror-dashboard');
    assert.ok(isSubset(v.grafanaDashboard.labels, cm.metadata.labels ?? {}));
    assert.equal(cm.metadata.annotations?.grafana_folder, v.grafanaDashboard.folder);
    assert.deepEqual(Object.keys(cm.data), ['peili.json']);
    assert.deepEqual(
      JSON.parse(cm.data['peili.json'] ?? ''),
      JSON.parse(readFileSync(join(CHART_DIR, 'dashboards/peili.json'), 'utf8')),
    );
  });

  it('operator mode: a GrafanaDashboard of the right shape (no model installed: checked by hand)', async () => {
    const objects = await renderChart([
      '--set',
      'grafanaDashboard.enabled=true',
      '--set',
      'grafanaDashboard.mode=operator',
    ]);
    const dashboards = objects.filter((o) => o.kind === 'GrafanaDashboard');
    assert.equal(dashboards.length, 1);
    const gd = dashboards[0] as K8sObject & { spec: Record<string, unknown> };
    assert.equal(gd.apiVersion, 'grafana.integreatly.org/v1beta1');
    assert.deepEqual(Object.keys(gd).sort(), ['apiVersion', 'kind', 'metadata', 'spec']);
    assert.deepEqual(Object.keys(gd.metadata).sort(), ['labels', 'name', 'namespace']);
    assert.equal(gd.metadata.labels?.grafana_dashboard, '1');
    assert.deepEqual(Object.keys(gd.spec).sort(), [
      'allowCrossNamespaceImport',
      'folder',
      'instanceSelector',
      'json',
    ]);
    assert.deepEqual(gd.spec.instanceSelector, { matchLabels: { dashboards: 'grafana' } });
    assert.equal(gd.spec.folder, 'Peili');
    assert.equal(gd.spec.allowCrossNamespaceImport, true);
    assert.equal(typeof gd.spec.json, 'string');
    assert.deepEqual(
      JSON.parse(gd.spec.json as string),
      JSON.parse(readFileSync(join(CHART_DIR, 'dashboards/peili.json'), 'utf8')),
    );
    assert.ok(!objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-dashboard')));
  });

  it('everything enabled: the cert-manager Certificate of the shared peer certificate, field by field (no model installed)', async () => {
    const objects = await renderChart(['-f', EVERYTHING_FILE]);
    const v = merge(VALUES, EVERYTHING);
    const certificate = find<K8sObject & { spec: unknown }>(objects, 'Certificate', 'mirror-peer-tls');
    const { labels, ...metadata } = certificate.metadata;
    assert.deepEqual(
      { ...certificate, metadata },
      {
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: { name: 'mirror-peer-tls', namespace: RELEASE.namespace },
        spec: {
          secretName: 'mirror-peer-tls',
          dnsNames: [v.peerTls.name],
          duration: v.peerTls.certificate.duration,
          renewBefore: v.peerTls.certificate.renewBefore,
          privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
          usages: ['digital signature', 'server auth', 'client auth'],
          issuerRef: v.peerTls.certificate.issuerRef,
        },
      },
    );
    assert.equal(labels?.['app.kubernetes.io/instance'], RELEASE.name);
    // The Secret the Certificate writes is the one the daemons mount, and the name the one checked.
    const pod = find<Workload>(objects, 'DaemonSet', 'mirror').spec.template.spec;
    assert.equal(pod.volumes?.find((vol) => vol.name === 'peer-tls')?.secret?.secretName, 'mirror-peer-tls');
    assert.ok(container(pod, 'registry').args?.includes(`--peer-tls-name=${v.peerTls.name}`));
  });

  it('peer TLS from an existing Secret: no Certificate, the default name, the daemon parses it', async () => {
    const objects = await renderChart([
      '--set',
      'peerTls.enabled=true',
      '--set',
      'peerTls.existingSecret=peili-peer-cert',
    ]);
    assert.ok(!objects.some((o) => o.kind === 'Certificate'));
    const pod = find<Workload>(objects, 'DaemonSet', 'peili').spec.template.spec;
    assert.equal(pod.volumes?.find((vol) => vol.name === 'peer-tls')?.secret?.secretName, 'peili-peer-cert');
    const daemon = parseConfig(
      expand(container(pod, 'registry').args ?? [], { POD_IP }),
      {},
    ) as RegistryConfig;
    assert.deepEqual(daemon.peerTls, {
      certFile: '/etc/peili/peer-tls/tls.crt',
      keyFile: '/etc/peili/peer-tls/tls.key',
      caFile: '/etc/peili/peer-tls/ca.crt',
      name: `peili-peer.${RELEASE.namespace}`,
    });
  });

  const peerTlsMistakes: { args: string[]; message: string }[] = [
    {
      args: ['--set', 'peerTls.enabled=true'],
      message: 'peerTls.enabled needs a Secret: set peerTls.existingSecret or peerTls.certificate.create',
    },
    {
      args: ['--set', 'peerTls.certificate.create=true', '--set', 'peerTls.certificate.issuerRef.name=ca'],
      message: 'peerTls.certificate.create is set but peerTls.enabled is not',
    },
  ];
  for (const mistake of peerTlsMistakes) {
    it(`refuses to render: ${mistake.message}`, async () => {
      const result = await runHelm(['template', RELEASE.name, CHART_DIR, ...mistake.args]);
      assert.notEqual(result.code, 0);
      assert.ok(result.stderr.includes(mistake.message), result.stderr);
    });
  }

  it('cleanupHook.enabled=false renders no hook objects', async () => {
    const objects = await renderChart(['--set', 'cleanupHook.enabled=false']);
    assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'DaemonSet/peili',
      'Service/peili-metrics',
      'Service/peili-peers',
    ]);
  });

  it('peili.configureHosts=false: no init container, no registry config mount, no cleanup hook', async () => {
    const objects = await renderChart(['--set', 'peili.configureHosts=false']);
    assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'DaemonSet/peili',
      'Service/peili-metrics',
      'Service/peili-peers',
    ]);
    const ds = find<Workload>(objects, 'DaemonSet', 'peili');
    assert.equal(ds.spec.template.spec.initContainers, undefined);
    const volumes = (ds.spec.template.spec as { volumes?: { name: string }[] }).volumes ?? [];
    assert.deepEqual(
      volumes.map((v) => v.name),
      ['containerd-sock', 'containerd-content'],
    );
  });

  it('image.tag set: the tag is used and becomes the version label', async () => {
    const objects = await renderChart(['--set-string', 'image.tag=2.0.0-rc.1']);
    const ds = find<Workload>(objects, 'DaemonSet', 'peili');
    assert.equal(container(ds.spec.template.spec, 'registry').image, 'ghcr.io/peili-dev/peili:2.0.0-rc.1');
    assert.equal(ds.metadata.labels?.['app.kubernetes.io/version'], '2.0.0-rc.1');
  });

  it('a long release name still gives valid names', async () => {
    // helm's own limit for release names is 53 characters.
    const name = 'long-release-'.padEnd(53, 'x');
    const result = await runHelm(['template', name, CHART_DIR, '--namespace', RELEASE.namespace]);
    assert.equal(result.code, 0, result.stderr);
    const names = parseManifests(result.stdout).map((o) => o.metadata.name);
    assert.equal(names.length, 9);
    assert.ok(names.includes(`${name.slice(0, 50)}-cleanup-wait`));
    for (const n of names) assert.match(n, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  });
});

describe('chart: every daemon flag is reachable from values', () => {
  it('the everything-enabled render sets every flag of registry and configure', async () => {
    const objects = await renderChart(['-f', EVERYTHING_FILE]);
    const pod = find<Workload>(objects, 'DaemonSet', 'mirror').spec.template.spec;
    const given = (c: Container) => new Set((c.args ?? []).slice(1).map((arg) => arg.slice(2).split('=')[0]));
    const registryFlags = given(container(pod, 'registry'));
    const configureFlags = given(container(pod, 'configure', true));
    const missing = FLAGS.flatMap((spec) => [
      ...(spec.commands.includes('registry') && !registryFlags.has(spec.name)
        ? [`registry --${spec.name}`]
        : []),
      ...(spec.commands.includes('configure') && !configureFlags.has(spec.name)
        ? [`configure --${spec.name}`]
        : []),
    ]);
    assert.deepEqual(missing, []);
  });
});

describe('chart: invalid values are rejected by values.schema.json', () => {
  const cases: readonly { name: string; args: string[]; message: string }[] = [
    {
      name: 'unknown top-level key',
      args: ['--set', 'replicas=3'],
      message: "- at '': additional properties 'replicas' not allowed",
    },
    {
      name: 'unknown nested key',
      args: ['--set', 'peili.containerdSocket=/x'],
      message: "- at '/peili': additional properties 'containerdSocket' not allowed",
    },
    {
      name: 'unknown key in a list item',
      args: ['--set-json', 'tolerations=[{"operator":"Exists","foo":1}]'],
      message: "- at '/tolerations/0': additional properties 'foo' not allowed",
    },
    {
      name: 'unknown resource name',
      args: ['--set-json', 'resources={"requests":{"gpu":1}}'],
      message: "- at '/resources/requests': additional properties 'gpu' not allowed",
    },
    {
      name: 'port as a string',
      args: ['--set-string', 'service.registry.hostPort=abc'],
      message: "- at '/service/registry/hostPort': got string, want integer",
    },
    {
      name: 'port out of range',
      args: ['--set', 'service.registry.hostPort=70000'],
      message: "- at '/service/registry/hostPort': maximum: got 70,000, want 65,535",
    },
    {
      name: 'boolean as a string',
      args: ['--set', 'peili.prependExisting=yes'],
      message: "- at '/peili/prependExisting': got string, want boolean",
    },
    {
      name: 'list as a string',
      args: ['--set', 'peili.mirroredRegistries=docker.io'],
      message: "- at '/peili/mirroredRegistries': got string, want array",
    },
    {
      name: 'enum value',
      args: ['--set', 'peili.resolveTags=sometimes'],
      message: "- at '/peili/resolveTags': value must be one of 'upstream-down', 'always', 'never'",
    },
    {
      name: 'log level',
      args: ['--set', 'peili.logLevel=verbose'],
      message:
        "- at '/peili/logLevel': value must be one of 'fatal', 'error', 'warn', 'info', 'debug', 'trace'",
    },
    {
      name: 'duration without unit',
      args: ['--set', 'peili.lookupTimeout=20'],
      message: "- at '/peili/lookupTimeout': got number, want string",
    },
    {
      name: 'malformed duration',
      args: ['--set', 'peili.lookupTimeout=fast'],
      message: "- at '/peili/lookupTimeout': 'fast' does not match pattern",
    },
    {
      name: 'malformed digest',
      args: ['--set', 'image.digest=sha256:abc'],
      message: "- at '/image/digest': 'sha256:abc' does not match pattern '^(sha256:[a-f0-9]{64})?$'",
    },
    {
      name: 'grafana mode',
      args: ['--set', 'grafanaDashboard.mode=sidecar'],
      message: "- at '/grafanaDashboard/mode': value must be one of 'configmap', 'operator'",
    },
    {
      name: 'peer TLS certificate without issuer',
      args: ['--set', 'peerTls.enabled=true', '--set', 'peerTls.certificate.create=true'],
      message: "- at '/peerTls/certificate/issuerRef/name': minLength: got 0, want 1",
    },
    {
      name: 'peer TLS name with a wildcard',
      args: ['--set', 'peerTls.name=*.peers'],
      message: "- at '/peerTls/name': '*.peers' does not match pattern",
    },
    {
      name: 'relative host path',
      args: ['--set', 'peili.containerdRegistryConfigPath=etc/cri/conf.d/hosts'],
      message: "- at '/peili/containerdRegistryConfigPath': 'etc/cri/conf.d/hosts' does not match pattern",
    },
  ];
  for (const c of cases) {
    it(`${c.name}: helm template and helm lint fail naming the value`, async () => {
      const template = await runHelm(['template', RELEASE.name, CHART_DIR, ...c.args]);
      assert.notEqual(template.code, 0);
      assert.match(template.stderr, /values don't meet the specifications of the schema\(s\)/);
      assert.ok(
        template.stderr.includes(c.message),
        `expected ${JSON.stringify(c.message)} in:\n${template.stderr}`,
      );
      const lint = await runHelm(['lint', CHART_DIR, ...c.args]);
      assert.notEqual(lint.code, 0);
      assert.ok(lint.stdout.includes(c.message), `expected ${JSON.stringify(c.message)} in:\n${lint.stdout}`);
    });
  }
});
