// `npm run docs`: regenerates the README's configuration reference from the flag table.
import { readFile, writeFile } from 'node:fs/promises';
import { withFlagsTable } from './config-docs.js';

const path = new URL('../README.md', import.meta.url);
const before = await readFile(path, 'utf8');
const after = withFlagsTable(before);
if (after !== before) await writeFile(path, after);
console.log(after === before ? 'README.md is up to date' : 'README.md flag table updated');
