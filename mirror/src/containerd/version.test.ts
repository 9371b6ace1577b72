import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseContainerdVersion, supportsDialTimeout } from './version.js';

describe('parseContainerdVersion and supportsDialTimeout', () => {
  const cases: { version: string; parsed: ReturnType<typeof parseContainerdVersion>; dial: boolean }[] = [
    { version: '1.6.20~ds1', parsed: { major: 1, minor: 6, patch: 20 }, dial: false },
    { version: 'v1.7.22', parsed: { major: 1, minor: 7, patch: 22 }, dial: true },
    { version: '2.0.0-rc.1', parsed: { major: 2, minor: 0, patch: 0 }, dial: true },
    { version: 'v2.1.4', parsed: { major: 2, minor: 1, patch: 4 }, dial: true },
    { version: '1.5', parsed: { major: 1, minor: 5, patch: 0 }, dial: false },
    { version: ' 1.10.0 ', parsed: { major: 1, minor: 10, patch: 0 }, dial: true },
    { version: 'unknown', parsed: undefined, dial: false },
    { version: '', parsed: undefined, dial: false },
  ];
  for (const { version, parsed, dial } of cases) {
    it(JSON.stringify(version), () => {
      assert.deepEqual(parseContainerdVersion(version), parsed);
      assert.equal(supportsDialTimeout(version), dial);
    });
  }
});
