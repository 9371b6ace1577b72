// A small typed binding to the Talos provider, shaped like @pulumiverse/talos:
// `import * as talos from './talos/index.js'` today, `import * as talos from '@pulumiverse/talos'` later.
export * as machine from './machine.js';
export * as client from './client.js';
export * from './types.js';
