import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PeerError } from './peer-error.js';
import { createPeerHttpClient, type PeerResponse, type PeerTlsClientOptions } from './peer-http-client.js';

const HOST = '127.0.6.90';

async function readAll(response: PeerResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** Listens on HOST and resolves with the port. */
async function listen(server: TcpServer | HttpServer | HttpsServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as { port: number }).port;
}

describe('createPeerHttpClient', () => {
  it('sends a GET once more on a fresh connection when the peer reset the pooled one', async () => {
    // A raw server that answers the first request of each connection and resets the connection
    // at the second: what a peer closing an idle keep-alive socket looks like to its client.
    let connections = 0;
    const sockets: Socket[] = [];
    const server = createTcpServer((socket) => {
      connections++;
      sockets.push(socket);
      let requests = 0;
      socket.on('data', (data) => {
        if (!data.includes('\r\n\r\n')) return;
        requests++;
        if (requests === 1)
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
        else socket.resetAndDestroy();
      });
      socket.on('error', () => {});
    });
    const port = await listen(server);
    const client = createPeerHttpClient();
    try {
      const url = `http://${HOST}:${port}/v2/`;
      const first = await client.request(url, {
        method: 'GET',
        headers: {},
        signal: new AbortController().signal,
      });
      assert.equal(await readAll(first), 'ok');
      const second = await client.request(url, {
        method: 'GET',
        headers: {},
        signal: new AbortController().signal,
      });
      assert.equal(second.status, 200);
      assert.equal(await readAll(second), 'ok');
      assert.equal(connections, 2);
    } finally {
      client.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports a refused connection by its code, and an abort before the headers promptly', async () => {
    const client = createPeerHttpClient();
    const closed = createTcpServer();
    const port = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      client.request(`http://${HOST}:${port}/`, {
        method: 'GET',
        headers: {},
        signal: new AbortController().signal,
      }),
      (error: unknown) =>
        error instanceof PeerError && error.reason === 'refused' && error.code === 'ECONNREFUSED',
    );

    // Aborted once the peer accepted the connection (it never answers).
    const controller = new AbortController();
    const silentSockets: Socket[] = [];
    const silent = createTcpServer((socket) => {
      silentSockets.push(socket);
      controller.abort();
    });
    const silentPort = await listen(silent);
    const pending = client.request(`http://${HOST}:${silentPort}/`, {
      method: 'GET',
      headers: {},
      signal: controller.signal,
    });
    await assert.rejects(
      pending,
      (error: unknown) =>
        error instanceof PeerError && error.reason === 'aborted' && error.code === 'ABORT_ERR',
    );
    for (const s of silentSockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
    client.close();
  });

  it('refuses schemes other than http and https, and https without peer TLS settings', async () => {
    const client = createPeerHttpClient();
    const signal = new AbortController().signal;
    await assert.rejects(
      client.request('ftp://127.0.0.1/', { method: 'GET', headers: {}, signal }),
      /scheme/,
    );
    await assert.rejects(
      client.request(`https://${HOST}:1/`, { method: 'GET', headers: {}, signal }),
      /no peer TLS/,
    );
  });

  describe('text', () => {
    const bodies: Record<string, { length?: string; body: string }> = {
      '/small': { body: 'hello' },
      '/declared-huge': { length: String(1024 * 1024), body: '' },
      '/streamed-huge': { body: 'x'.repeat(4096) },
    };
    const received: { method: string; body: string }[] = [];
    const server = createHttpServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ method: request.method ?? '', body });
        const answer = bodies[request.url ?? ''] ?? { body: '' };
        if (answer.length !== undefined) response.writeHead(200, { 'content-length': answer.length });
        // Written, then ended: chunked (no length), so only the bytes read can tell the size.
        response.write(answer.body);
        response.end();
      });
    });
    let base = '';
    const client = createPeerHttpClient();
    before(async () => {
      base = `http://${HOST}:${await listen(server)}`;
    });
    after(async () => {
      client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    it('sends a POST body with its length and reads the whole answer', async () => {
      const signal = new AbortController().signal;
      const answer = await client.text(
        `${base}/small`,
        { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'ping', signal },
        100,
      );
      assert.deepEqual(answer, { status: 200, text: 'hello' });
      assert.deepEqual(received.at(-1), { method: 'POST', body: 'ping' });
    });

    it('refuses answers over the limit, declared or read', async () => {
      const signal = new AbortController().signal;
      await assert.rejects(
        client.text(`${base}/declared-huge`, { method: 'GET', headers: {}, signal }, 1000),
        {
          name: 'PeerError',
          reason: 'toolarge',
          message: `answer of ${1024 * 1024} bytes exceeds 1000`,
        },
      );
      await assert.rejects(
        client.text(`${base}/streamed-huge`, { method: 'GET', headers: {}, signal }, 1000),
        {
          name: 'PeerError',
          reason: 'toolarge',
          message: 'answer exceeds 1000 bytes',
        },
      );
    });
  });

  describe('over TLS', () => {
    let dir: string;
    const pem = (name: string): Buffer => readFileSync(join(dir, name));
    let server: HttpsServer;
    let url: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'peili-peer-http-'));
      const openssl = (...args: string[]): void => {
        execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
      };
      for (const ca of ['ca', 'other-ca']) {
        openssl(
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '1',
          '-subj',
          `/CN=${ca}`,
          '-keyout',
          `${ca}.key`,
          '-out',
          `${ca}.crt`,
        );
      }
      // One identity for every daemon, named by DNS (peers are dialled by IP).
      writeFileSync(join(dir, 'peer.ext'), 'subjectAltName=DNS:peili-peer\n');
      openssl(
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=peili-peer',
        '-keyout',
        'peer.key',
        '-out',
        'peer.csr',
      );
      openssl(
        'x509',
        '-req',
        '-in',
        'peer.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        'peer.ext',
        '-out',
        'peer.crt',
      );
      server = createHttpsServer(
        {
          key: pem('peer.key'),
          cert: pem('peer.crt'),
          ca: pem('ca.crt'),
          requestCert: true,
          rejectUnauthorized: true,
        },
        (_req, res) => res.end('secure'),
      );
      url = `https://${HOST}:${await listen(server)}/v2/`;
    });

    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    });

    const get = (tls: PeerTlsClientOptions): Promise<PeerResponse> => {
      const client = createPeerHttpClient({ tls });
      return client
        .request(url, { method: 'GET', headers: {}, signal: new AbortController().signal })
        .finally(() => setImmediate(() => client.close()));
    };

    it('fetches from a peer whose certificate names the peer identity, presenting its own', async () => {
      const response = await get({
        ca: pem('ca.crt'),
        cert: pem('peer.crt'),
        key: pem('peer.key'),
        servername: 'peili-peer',
      });
      assert.equal(response.status, 200);
      assert.equal(await readAll(response), 'secure');
    });

    it('refuses a peer certified by another CA, or under another name', async () => {
      await assert.rejects(
        get({
          ca: pem('other-ca.crt'),
          cert: pem('peer.crt'),
          key: pem('peer.key'),
          servername: 'peili-peer',
        }),
        PeerError,
      );
      await assert.rejects(
        get({ ca: pem('ca.crt'), cert: pem('peer.crt'), key: pem('peer.key'), servername: 'someone-else' }),
        (error: unknown) => error instanceof PeerError && error.code === 'ERR_TLS_CERT_ALTNAME_INVALID',
      );
    });

    it('is refused by a peer that requires a client certificate when it presents none', async () => {
      await assert.rejects(get({ ca: pem('ca.crt'), servername: 'peili-peer' }), PeerError);
    });
  });
});
