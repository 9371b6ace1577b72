// One lint config for both parts. The restricted-imports rule holds the architecture's line:
// fastify and grpc-js live at the edges (http/, routing transport, containerd/), never in the core.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.testbed/**', '.render/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['mirror/src/oci/**/*.ts', 'mirror/src/registry/**/*.ts', 'mirror/src/store/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['fastify', 'fastify/*', '@fastify/*'],
              message: 'The core stays free of fastify: put it in mirror/src/http/.',
            },
            { group: ['@grpc/*'], message: 'The core stays free of grpc: put it in mirror/src/containerd/.' },
          ],
        },
      ],
    },
  },
);
