// A real upstream registry: `docker-registry serve` (distribution v2.8) with filesystem storage.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startProcess, waitFor, type ManagedProcess } from './process.js';
import { freePort, tailFile } from './scratch.js';

/** Options of {@link startRegistry}. */
export interface RegistryOptions {
  /** Directory holding `config.yml`, `data/` and `registry.log`; created when missing. */
  readonly dir: string;
  /** Address to listen on; default `127.0.0.1`. */
  readonly host?: string;
  /** Port to listen on; default: a free port picked at start. */
  readonly port?: number;
  /** How long to wait for `GET /v2/` to answer 200; default 15000 ms. */
  readonly readyTimeoutMs?: number;
}

/** A running (or stopped) docker-registry. */
export interface RegistryProcess {
  /** `http://host:port` */
  readonly url: string;
  /** `host:port`, the form used in image references. */
  readonly hostPort: string;
  /** The registry's log file (appended to across restarts). */
  readonly logPath: string;
  /** The storage root (`<dir>/data`). */
  readonly dataDir: string;
  /** PID of the running registry, or undefined when stopped. */
  pid(): number | undefined;
  /** Stops the registry (SIGTERM, then SIGKILL). Safe to call twice. */
  stop(): Promise<void>;
  /** Starts it again after {@link stop}, same address and same data. */
  start(): Promise<void>;
  /** The access-log request lines (`"GET /v2/… HTTP/1.1" 200 …`), oldest first. */
  requestLog(): Promise<string[]>;
}

/** Renders the registry's config.yml: filesystem storage, deletes enabled, no auth. */
export function renderRegistryConfig(options: { dataDir: string; host: string; port: number }): string {
  // JSON is valid YAML, which spares quoting rules for paths.
  return `${JSON.stringify(
    {
      version: 0.1,
      log: { level: 'info', accesslog: { disabled: false }, fields: { service: 'registry' } },
      storage: {
        filesystem: { rootdirectory: options.dataDir },
        delete: { enabled: true },
        cache: { blobdescriptor: 'inmemory' },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: `${options.host}:${options.port}`, headers: { 'X-Content-Type-Options': ['nosniff'] } },
    },
    null,
    2,
  )}\n`;
}

// Access-log lines are Apache combined format: `ip - - [date] "METHOD /path HTTP/1.1" status size "ref" "agent"`.
const ACCESS_LINE = /"(?:GET|HEAD|PUT|POST|PATCH|DELETE) \/v2\/[^"]* HTTP\/[0-9.]+" \d{3} /;

/** User agent of the test bed's own readiness probes, left out of {@link RegistryProcess.requestLog}. */
export const PROBE_USER_AGENT = 'peili-testbed-probe';

/** Picks the access-log request lines out of a registry log, without the test bed's own probes. */
export function parseRequestLog(log: string): string[] {
  return log.split('\n').filter((line) => ACCESS_LINE.test(line) && !line.endsWith(`"${PROBE_USER_AGENT}"`));
}

/** Starts `docker-registry serve` and waits until `GET /v2/` answers 200. */
export async function startRegistry(options: RegistryOptions): Promise<RegistryProcess> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const dir = resolve(options.dir);
  const dataDir = join(dir, 'data');
  const configPath = join(dir, 'config.yml');
  const logPath = join(dir, 'registry.log');
  await mkdir(dataDir, { recursive: true });
  await writeFile(configPath, renderRegistryConfig({ dataDir, host, port }));
  const hostPort = `${host}:${port}`;
  const url = `http://${hostPort}`;
  const readyTimeoutMs = options.readyTimeoutMs ?? 15000;
  let proc: ManagedProcess | undefined;

  const start = async (): Promise<void> => {
    if (proc?.running()) return;
    const started = await startProcess('docker-registry', ['serve', configPath], { logPath });
    proc = started;
    try {
      await waitFor(
        async () => {
          if (!started.running())
            throw new Error(`docker-registry exited early:\n${await tailFile(logPath)}`);
          try {
            const res = await fetch(`${url}/v2/`, {
              headers: { 'user-agent': PROBE_USER_AGENT },
              signal: AbortSignal.timeout(1000),
            });
            await res.arrayBuffer();
            return res.status === 200;
          } catch {
            return false;
          }
        },
        {
          timeoutMs: readyTimeoutMs,
          describe: async () =>
            `docker-registry at ${url} not ready after ${readyTimeoutMs} ms:\n${await tailFile(logPath)}`,
        },
      );
    } catch (err) {
      await started.stop();
      throw err;
    }
  };

  await start();
  return {
    url,
    hostPort,
    logPath,
    dataDir,
    pid: () => (proc?.running() ? proc.pid : undefined),
    start,
    stop: async () => {
      await proc?.stop();
    },
    requestLog: async () => parseRequestLog(await readFile(logPath, 'utf8')),
  };
}
