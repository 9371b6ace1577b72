// The Pulumi program (Pulumi.yaml `main`): load the validated stack config, build the stack.
// A default export only: Pulumi calls it and uses the result as the stack outputs.
import { loadStackConfig } from './config.js';
import { createKubeApi } from './kube-api.js';
import { createPeiliStack, type StackOutputs } from './program.js';

/** Entry point Pulumi runs for `pulumi up -s infra|apps`. */
export default async function main(): Promise<StackOutputs> {
  return createPeiliStack(loadStackConfig(), { kubeApi: (kubeconfig) => createKubeApi(kubeconfig) });
}
