// Throwaway PKI for tests: CAs and certificates made with the `openssl` binary (node:crypto makes
// keys but cannot sign certificates), written to a directory, read back as PEM.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One certificate's files and PEM texts. */
export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

/** A throwaway CA that can issue leaf certificates. */
export interface TestCa extends TestCert {
  /** Issues a certificate with these DNS names (empty: none) under `label`. */
  issue(label: string, dnsNames: readonly string[], options?: { days?: number }): Promise<TestCert>;
}

async function openssl(args: readonly string[]): Promise<void> {
  await run('openssl', [...args], { timeout: 20_000 });
}

async function read(label: string, dir: string): Promise<TestCert> {
  const certFile = join(dir, `${label}.crt`);
  const keyFile = join(dir, `${label}.key`);
  return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
}

/** Creates a self-signed CA `label` in `dir` (EC P-256 keys: fast to make). */
export async function createTestCa(dir: string, label: string): Promise<TestCa> {
  const base = join(dir, label);
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=${label}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const ca = await read(label, dir);
  return {
    ...ca,
    async issue(leafLabel, dnsNames, options = {}) {
      const leaf = join(dir, leafLabel);
      await openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        `${leaf}.key`,
        '-out',
        `${leaf}.csr`,
        '-subj',
        `/CN=${leafLabel}`,
      ]);
      const ext = [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth,clientAuth',
        ...(dnsNames.length > 0 ? [`subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}`] : []),
      ];
      const extFile = `${leaf}.ext`;
      await writeFile(extFile, ext.join('\n') + '\n');
      await openssl([
        'x509',
        '-req',
        '-in',
        `${leaf}.csr`,
        '-CA',
        ca.certFile,
        '-CAkey',
        ca.keyFile,
        '-CAcreateserial',
        '-out',
        `${leaf}.crt`,
        '-days',
        String(options.days ?? 2),
        '-extfile',
        extFile,
      ]);
      return read(leafLabel, dir);
    },
  };
}
