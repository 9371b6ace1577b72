// A Node.js language host for the Pulumi CLI, for the cluster test: it serves the Pulumi Node SDK's
// own LanguageRuntime server (the one the SDK's Automation API runs inline programs with) on a
// loopback port, and that server runs the project's program (Pulumi.yaml `main`, its default
// export) when the CLI asks. The CLI attaches to it with `--client=127.0.0.1:<port>`.
//
// Why not the `pulumi-language-nodejs` binary: its Go module is not served by the module proxy
// this project builds from (docs/deploy-pulumi.md, "What is verified against real engines").
//
// Usage: node --import tsx testbed/kube/language-host.ts <project-dir>; prints the port, then
// serves until stdin closes or SIGTERM.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import type * as GrpcJs from '@grpc/grpc-js';

const projectDir = resolve(process.argv[2] ?? '.');
const project = parse(readFileSync(join(projectDir, 'Pulumi.yaml'), 'utf8')) as { main?: string };
const mainPath = resolve(projectDir, project.main ?? '.');

// The SDK's internals and its own copy of grpc-js, so that the server and the SDK agree.
const requireHere = createRequire(join(projectDir, 'package.json'));
const sdkDir = dirname(requireHere.resolve('@pulumi/pulumi/package.json'));
const requireSdk = createRequire(join(sdkDir, 'index.js'));
const grpc = requireSdk('@grpc/grpc-js') as typeof GrpcJs;
const { LanguageServer } = requireSdk('./automation/server') as {
  LanguageServer: new (program: () => Promise<unknown>) => object;
};
const langrpc = requireSdk('./proto/language_grpc_pb') as { LanguageRuntimeService: never };

// Imported on each run, like the Node language host does: a default export is called and its
// result becomes the stack outputs.
const program = async (): Promise<unknown> => {
  const mod = (await import(pathToFileURL(mainPath).href)) as { default?: unknown };
  return typeof mod.default === 'function' ? await (mod.default as () => unknown)() : mod.default;
};

const server = new grpc.Server({
  'grpc.max_receive_message_length': 400 * 1024 * 1024,
  'grpc.max_send_message_length': 400 * 1024 * 1024,
});
server.addService(langrpc.LanguageRuntimeService, new LanguageServer(program) as never);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`language host: cannot listen: ${err.message}`);
    process.exit(1);
  }
  process.stdout.write(`${port}\n`);
});
const shutdown = (): void => {
  server.tryShutdown(() => process.exit(0));
};
process.stdin.on('end', shutdown);
process.stdin.resume();
process.once('SIGTERM', shutdown);
