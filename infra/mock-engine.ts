// Runs the real program offline under `pulumi.runtime.setMocks`, and records what the engine
// would have been asked: every registration (type, name, parent, dependencies, provider, plugin
// options, inputs and which of them are secret), every read and every provider function call.
// Used by the tests and by `npm run render`.
import * as pulumi from '@pulumi/pulumi';
import { CONFIG_NAMESPACE } from './config.js';
import type { DaemonSetCounts } from './health.js';

/** The marker Pulumi's wire format uses for a secret value. */
const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';
const SIG_KEY = '4dabf18193072939515e22adb298388d';

/** One resource registration (or read) the program made. */
export interface Registration {
  readonly kind: 'register' | 'read';
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  /** URN of the parent ('' for the stack itself). */
  readonly parent: string;
  readonly custom: boolean;
  /** URNs this resource waits for (dependsOn, expanded by the SDK). */
  readonly dependencies: readonly string[];
  /** Provider reference (`urn::id`) or ''. */
  readonly provider: string;
  readonly version: string;
  readonly pluginDownloadURL: string;
  readonly retainOnDelete: boolean;
  readonly additionalSecretOutputs: readonly string[];
  /** Inputs with secrets unwrapped. */
  readonly inputs: Record<string, unknown>;
  /** Top-level input keys whose value was sent as a secret. */
  readonly secretInputs: readonly string[];
  /** For reads: the id read. */
  readonly id?: string;
}

/** One provider function call. */
export interface Invocation {
  readonly token: string;
  readonly inputs: Record<string, unknown>;
  readonly version: string;
  readonly pluginDownloadURL: string;
}

/** What the mocked cluster reports back. */
export interface MockWorld {
  /** Status of the mirror's DaemonSet when it is read. @default all 3 nodes ready and updated */
  readonly daemonSetStatus?: DaemonSetCounts;
}

/** The outcome of one program run. */
export interface RunResult {
  readonly registrations: readonly Registration[];
  readonly invocations: readonly Invocation[];
  /** Stack outputs, secrets unwrapped. */
  readonly outputs: Record<string, unknown>;
  /** Names of stack outputs that are secret. */
  readonly secretOutputs: readonly string[];
}

/** Stack configuration as `Pulumi.<stack>.yaml` holds it (values as YAML), plus the secret keys. */
export interface MockConfig {
  /** Keys without namespace (`clusterName`) or with (`peili:clusterName`). */
  readonly values: Readonly<Record<string, unknown>>;
  /** Keys (either form) stored as secrets. */
  readonly secretKeys?: readonly string[];
}

function fullKey(key: string): string {
  return key.includes(':') ? key : `${CONFIG_NAMESPACE}:${key}`;
}

function isSecretWire(v: unknown): v is { value: unknown } {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** Removes Pulumi's secret wrappers from a wire value. */
export function unwrapSecrets(v: unknown): unknown {
  if (isSecretWire(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  return v;
}

interface StructLike {
  toJavaScript(): Record<string, unknown>;
}

// The subset of the RegisterResource/ReadResource/Invoke requests the recorder reads.
interface RequestLike {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom?(): boolean;
  getDependenciesList(): string[];
  getProvider(): string;
  getVersion(): string;
  getPlugindownloadurl(): string;
  getRetainondelete?(): boolean;
  getAdditionalsecretoutputsList(): string[];
  getObject?(): StructLike | undefined;
  getProperties?(): StructLike | undefined;
  getId?(): string;
}

interface InvokeRequestLike {
  getTok(): string;
  getArgs(): StructLike | undefined;
  getVersion(): string;
  getPlugindownloadurl(): string;
}

type Callback = (err: unknown, resp: unknown) => void;

interface MonitorLike {
  registerResource(req: RequestLike, cb: Callback): Promise<void>;
  readResource(req: RequestLike, cb: Callback): Promise<void>;
  invoke(req: InvokeRequestLike, cb: Callback): Promise<void>;
}

/** Default DaemonSet status of the mocked cluster: 3 nodes, all ready and updated. */
export const HEALTHY_DAEMONSET: DaemonSetCounts = {
  desiredNumberScheduled: 3,
  numberReady: 3,
  updatedNumberScheduled: 3,
};

function mockState(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  world: MockWorld,
): Record<string, unknown> {
  switch (type) {
    case 'talos:machine/configurationApply:ConfigurationApply': {
      const mode = String(inputs.applyMode ?? 'auto');
      // The mock node never needs a reboot for a file drop-in, so the dry-run resolves to `auto`.
      return {
        ...inputs,
        resolvedApplyMode: mode === 'staged_if_needing_reboot' ? 'auto' : mode,
        machineConfiguration: '# applied',
      };
    }
    case 'talos:machine/secrets:Secrets':
      return {
        ...inputs,
        clientConfiguration: { caCertificate: 'ca', clientCertificate: 'crt', clientKey: 'key' },
        machineSecrets: {},
      };
    case 'kubernetes:apps/v1:DaemonSet':
      return { ...inputs, metadata: { name }, status: world.daemonSetStatus ?? HEALTHY_DAEMONSET };
    case 'kubernetes:helm.sh/v3:Release':
      return { ...inputs, status: { status: 'deployed', version: inputs.version } };
    default:
      return inputs;
  }
}

function mocks(world: MockWorld): pulumi.runtime.Mocks {
  return {
    newResource(args) {
      const inputs = args.inputs as Record<string, unknown>;
      const metadata = inputs.metadata as { name?: string; namespace?: string } | undefined;
      const id =
        args.id || (metadata?.name ? `${metadata.namespace ?? ''}/${metadata.name}` : `${args.name}-id`);
      return { id, state: mockState(args.type, args.name, inputs, world) };
    },
    call(args) {
      const inputs = args.inputs as Record<string, unknown>;
      switch (args.token) {
        case 'talos:machine/getConfiguration:getConfiguration':
          return {
            ...inputs,
            id: String(inputs.clusterName),
            machineConfiguration: `# generated ${String(inputs.machineType)} config for ${String(inputs.clusterName)}\n`,
          };
        case 'talos:client/getConfiguration:getConfiguration':
          return {
            ...inputs,
            id: String(inputs.clusterName),
            talosConfig: `context: ${String(inputs.clusterName)}\n`,
          };
        default:
          throw new Error(`unexpected provider function ${args.token}`);
      }
    },
  };
}

function readRequest(kind: 'register' | 'read', req: RequestLike, urn: string): Registration {
  const struct = kind === 'register' ? req.getObject?.() : req.getProperties?.();
  const raw = struct?.toJavaScript() ?? {};
  return {
    kind,
    type: req.getType(),
    name: req.getName(),
    urn,
    parent: req.getParent(),
    custom: kind === 'read' ? true : (req.getCustom?.() ?? false),
    dependencies: req.getDependenciesList(),
    provider: req.getProvider(),
    version: req.getVersion(),
    pluginDownloadURL: req.getPlugindownloadurl(),
    retainOnDelete: req.getRetainondelete?.() ?? false,
    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
    inputs: unwrapSecrets(raw) as Record<string, unknown>,
    secretInputs: Object.entries(raw)
      .filter(([, v]) => isSecretWire(v))
      .map(([k]) => k),
    ...(kind === 'read' && req.getId ? { id: req.getId() } : {}),
  };
}

/** Waits for the runtime's outstanding calls (exported by the runtime, absent from its typings). */
function waitForRPCs(): Promise<void> {
  return (
    (pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> }).waitForRPCs?.() ?? Promise.resolve()
  );
}

/** The program threw; carries what it had registered before (to prove nothing was touched). */
export class MockRunError extends Error {
  constructor(
    override readonly cause: unknown,
    readonly registrations: readonly Registration[],
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'MockRunError';
  }
}

// setMocks keeps global state; runs must not overlap.
let running: Promise<unknown> = Promise.resolve();

/** Runs `program` as the Pulumi engine would, offline, with `config` as the stack configuration. */
export function runUnderMocks(
  program: () => unknown,
  config: MockConfig,
  options: { stack?: string; world?: MockWorld } = {},
): Promise<RunResult> {
  const run = running.then(() => runOnce(program, config, options));
  running = run.catch(() => undefined);
  return run;
}

async function runOnce(
  program: () => unknown,
  config: MockConfig,
  options: { stack?: string; world?: MockWorld },
): Promise<RunResult> {
  const world = options.world ?? {};
  await pulumi.runtime.setMocks(mocks(world), CONFIG_NAMESPACE, options.stack ?? 'test', false);
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.values))
    values[fullKey(k)] = typeof v === 'string' ? v : JSON.stringify(v);
  pulumi.runtime.setAllConfig(values, (config.secretKeys ?? []).map(fullKey));

  const registrations: Registration[] = [];
  const invocations: Invocation[] = [];
  const monitor = pulumi.runtime.getMonitor() as unknown as MonitorLike;
  const register = monitor.registerResource.bind(monitor);
  const read = monitor.readResource.bind(monitor);
  const invoke = monitor.invoke.bind(monitor);
  monitor.registerResource = (req, cb) =>
    register(req, (err, resp) => {
      if (!err) registrations.push(readRequest('register', req, (resp as { getUrn(): string }).getUrn()));
      cb(err, resp);
    });
  monitor.readResource = (req, cb) =>
    read(req, (err, resp) => {
      if (!err) registrations.push(readRequest('read', req, (resp as { getUrn(): string }).getUrn()));
      cb(err, resp);
    });
  monitor.invoke = (req, cb) => {
    invocations.push({
      token: req.getTok(),
      inputs: unwrapSecrets(req.getArgs()?.toJavaScript() ?? {}) as Record<string, unknown>,
      version: req.getVersion(),
      pluginDownloadURL: req.getPlugindownloadurl(),
    });
    return invoke(req, cb);
  };

  // Keep the program's own return value: the stack's massaged copy loses which outputs are secret.
  let returned: Record<string, unknown> = {};
  let failure: { error: unknown } | undefined;
  // A program error is caught inside the stack so the stack itself completes cleanly (no stray
  // rejections from its outputs), then rethrown with what had been registered.
  await pulumi.runtime.runInPulumiStack(async () => {
    try {
      returned = ((await program()) ?? {}) as Record<string, unknown>;
    } catch (error) {
      failure = { error };
    }
    return returned;
  });
  await waitForRPCs();
  if (failure) throw new MockRunError(failure.error, registrations);
  // Resources no output depends on may still be registering.
  await waitForRPCs();
  const resolved: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  for (const [k, v] of Object.entries(returned)) {
    if (pulumi.Output.isInstance(v)) {
      if (await pulumi.isSecret(v)) secretOutputs.push(k);
      resolved[k] = await new Promise((resolve) => v.apply((x) => resolve(x)));
    } else {
      resolved[k] = v;
    }
  }
  return {
    registrations,
    invocations,
    outputs: unwrapSecrets(resolved) as Record<string, unknown>,
    secretOutputs,
  };
}
