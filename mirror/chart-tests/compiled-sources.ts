// What `tsc -p <config>` compiles, asked of the TypeScript compiler without emitting anything.
import assert from 'node:assert/strict';
import { relative } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './helm.js';

/** The source files (no declarations) `tsc -p <config>` compiles, relative to the repository. */
export function compiledSources(configPath: string): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  );
  assert.ok(parsed, `cannot read ${configPath}`);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  return program
    .getSourceFiles()
    .filter((file) => !file.isDeclarationFile)
    .map((file) => relative(REPO_ROOT, file.fileName))
    .sort();
}
