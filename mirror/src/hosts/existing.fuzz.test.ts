// Property-based fuzzing of the parser of existing hosts.toml files (what `configure
// --prepend-existing` reads from a node): random text, TOML-like documents with host tables and
// odd values, and real files with bytes cut or changed. The parser returns a result or throws its
// own HostsTomlError naming the file, never anything else; cert paths come out as strings.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { certPaths, HostsTomlError, parseHostsToml } from './existing.js';
import { FIXTURE_QUAY_HOSTS, fixtureDockerHosts } from '../../test-support/hosts-fixtures.js';

// A fixed number of inputs from a fixed seed, never a time window: the same inputs on any machine.
const RUNS = Number(process.env.PEILI_FUZZ_RUNS ?? 2000);
const SEED = Number(process.env.PEILI_FUZZ_SEED ?? Date.now() % 2 ** 31);

const bareKey = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const quotedKey = fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s));
const tomlValue = fc.oneof(
  fc.string({ maxLength: 30 }).map((s) => JSON.stringify(s)),
  fc.string({ maxLength: 30 }).map((s) => `'${s.replaceAll("'", '').replaceAll('\n', '')}'`),
  fc.integer().map(String),
  fc.double().map(String),
  fc.boolean().map(String),
  fc.constantFrom(
    '[]',
    "['pull', 'resolve']",
    '[1, "a"]',
    '{}',
    '{ a = 1 }',
    '1979-05-27T07:32:00Z',
    'inf',
    'nan',
  ),
  fc
    .array(
      fc.string({ maxLength: 10 }).map((s) => JSON.stringify(s)),
      { maxLength: 4 },
    )
    .map((a) => `[${a.join(', ')}]`),
);
const line = fc.oneof(
  fc
    .tuple(
      fc.oneof(bareKey, quotedKey, fc.constantFrom('ca', 'client', 'server', 'capabilities', 'skip_verify')),
      tomlValue,
    )
    .map(([k, v]) => `${k} = ${v}`),
  fc
    .oneof(fc.string({ maxLength: 30 }), fc.constantFrom('http://h:5000', 'https://mirror.example'))
    .map((url) => `[host.${JSON.stringify(url)}]`),
  fc.constantFrom(
    '[host]',
    '[[host]]',
    '[host."a".b]',
    'host = 1',
    'host = "x"',
    '[header]',
    '# comment',
    '',
  ),
  fc.string({ maxLength: 40 }),
);
const document = fc.array(line, { maxLength: 12 }).map((lines) => lines.join('\n'));

const REAL = [fixtureDockerHosts('/etc/containerd/certs.d'), FIXTURE_QUAY_HOSTS];
/** A real file with a slice cut out or replaced. */
const mangled = fc
  .tuple(fc.constantFrom(...REAL), fc.nat(), fc.nat({ max: 40 }), fc.string({ maxLength: 10 }))
  .map(([text, at, length, insert]) => {
    const start = at % (text.length + 1);
    return text.slice(0, start) + insert + text.slice(start + length);
  });

describe('hosts.toml parser under fuzzing', () => {
  it('returns a parse or throws HostsTomlError naming the file, nothing else', () => {
    let tried = 0;
    let parsed = 0;
    let hostTables = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          document,
          mangled,
          fc.string({ maxLength: 200 }),
          fc.string({ unit: 'grapheme', maxLength: 100 }),
        ),
        (text) => {
          tried++;
          let file;
          try {
            file = parseHostsToml(text, 'fuzz/hosts.toml');
          } catch (error) {
            assert.ok(error instanceof HostsTomlError, `threw ${String(error)} for ${JSON.stringify(text)}`);
            assert.match(error.message, /^fuzz\/hosts\.toml: /);
            return;
          }
          parsed++;
          hostTables += file.hosts.length;
          for (const table of [file.top, ...file.hosts.map((h) => h.table)]) {
            for (const path of certPaths(table)) assert.equal(typeof path, 'string');
          }
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
    console.log(
      `hosts.toml fuzz: ${tried} documents tried, ${parsed} parsed (${hostTables} host tables), the rest refused with HostsTomlError`,
    );
    assert.equal(tried, RUNS, 'every input was tried');
    assert.ok(parsed > 0 && hostTables > 0, 'some documents parsed with host tables');
  });
});
