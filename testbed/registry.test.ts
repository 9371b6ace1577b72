import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRequestLog, PROBE_USER_AGENT, renderRegistryConfig } from './registry.js';

describe('renderRegistryConfig', () => {
  it('renders filesystem storage with deletes enabled on the given address', () => {
    const config = JSON.parse(
      renderRegistryConfig({ dataDir: '/s/reg/data', host: '127.0.1.1', port: 5000 }),
    ) as {
      storage: Record<string, unknown>;
      http: { addr: string };
    };
    assert.deepEqual(config.storage.filesystem, { rootdirectory: '/s/reg/data' });
    assert.deepEqual(config.storage.delete, { enabled: true });
    assert.equal(config.http.addr, '127.0.1.1:5000');
  });
});

describe('parseRequestLog', () => {
  it('keeps access-log request lines and drops other lines and the test bed probes', () => {
    const pull =
      '127.0.0.1 - - [21/Nov/2026:20:43:49 +0000] "HEAD /v2/test/app/manifests/v1 HTTP/1.1" 200 718 "" "containerd/1.6.20~ds1"';
    const blob =
      '127.0.0.1 - - [21/Nov/2026:20:43:49 +0000] "GET /v2/test/app/blobs/sha256:ab HTTP/1.1" 404 157 "" "containerd/1.6.20~ds1"';
    const probe = `127.0.0.1 - - [21/Nov/2026:20:43:49 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "${PROBE_USER_AGENT}"`;
    const other = 'time="2026-11-21T20:43:49Z" level=info msg="listening on 127.0.1.1:5000"';
    assert.deepEqual(parseRequestLog([other, probe, pull, blob, ''].join('\n')), [pull, blob]);
  });
});
