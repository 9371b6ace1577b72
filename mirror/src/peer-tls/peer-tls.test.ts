import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createPeerTls, loadPeerTls, PeerTlsError, type PeerTlsMaterial } from './peer-tls.js';
import { createTestCa, type TestCa, type TestCert } from '../../test-support/test-ca.js';

const NAME = 'peili-peer.test';

describe('peer TLS material', () => {
  let dir: string;
  let ca: TestCa;
  let otherCa: TestCa;
  let peer: TestCert;
  let wrongName: TestCert;
  let noSan: TestCert;
  let foreign: TestCert;
  let good: PeerTlsMaterial;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peili-tls-'));
    ca = await createTestCa(dir, 'ca');
    otherCa = await createTestCa(dir, 'other-ca');
    peer = await ca.issue('peer', [NAME]);
    wrongName = await ca.issue('wrong-name', ['someone-else.test']);
    noSan = await ca.issue('no-san', []);
    foreign = await otherCa.issue('foreign', [NAME]);
    good = { cert: peer.cert, key: peer.key, ca: ca.cert, name: NAME };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts a certificate of the CA carrying the name and builds mutual options', () => {
    const tls = createPeerTls(good);
    assert.equal(tls.name, NAME);
    assert.deepEqual(
      { ...tls.clientOptions },
      { ca: ca.cert, cert: peer.cert, key: peer.key, servername: NAME, minVersion: 'TLSv1.3' },
    );
    assert.equal(tls.serverOptions.requestCert, true);
    assert.equal(tls.serverOptions.rejectUnauthorized, true);
    assert.equal(tls.serverOptions.ca, ca.cert);
  });

  it('accepts a chain sent with its CA appended (as cert-manager may write tls.crt)', () => {
    assert.doesNotThrow(() => createPeerTls({ ...good, cert: peer.cert + ca.cert }));
  });

  const refusals: { name: string; material: () => PeerTlsMaterial; message: string | RegExp }[] = [
    {
      name: 'a name the certificate lacks',
      material: () => ({ ...good, cert: wrongName.cert, key: wrongName.key }),
      message: `--peer-tls-name: the certificate in --peer-tls-cert-file does not carry the DNS name "${NAME}" (it has DNS:someone-else.test)`,
    },
    {
      name: 'a certificate without subjectAltName',
      material: () => ({ ...good, cert: noSan.cert, key: noSan.key }),
      message: `--peer-tls-name: the certificate in --peer-tls-cert-file does not carry the DNS name "${NAME}" (it has (no subjectAltName))`,
    },
    {
      name: "another certificate's key",
      material: () => ({ ...good, key: wrongName.key }),
      message: '--peer-tls-key-file: the key does not belong to the certificate in --peer-tls-cert-file',
    },
    {
      name: 'a certificate of another CA',
      material: () => ({ ...good, cert: foreign.cert, key: foreign.key }),
      message: '--peer-tls-cert-file: the certificate is not issued by a CA in --peer-tls-ca-file',
    },
    {
      name: 'no certificate in the CA file',
      material: () => ({ ...good, ca: 'not a certificate' }),
      message: '--peer-tls-ca-file: no PEM certificate found',
    },
    {
      name: 'a key that is not PEM',
      material: () => ({ ...good, key: 'garbage' }),
      message: /^--peer-tls-key-file: not a PEM private key: /,
    },
    {
      name: 'an IP address as the name',
      material: () => ({ ...good, name: '10.0.0.7' }),
      message: '--peer-tls-name: expected a DNS name like peili-peer.kube-system, got "10.0.0.7"',
    },
  ];
  for (const refusal of refusals) {
    it(`refuses ${refusal.name}, naming the flag`, () => {
      assert.throws(
        () => createPeerTls(refusal.material()),
        (error: unknown) => {
          assert.ok(error instanceof PeerTlsError);
          if (typeof refusal.message === 'string') assert.equal(error.message, refusal.message);
          else assert.match(error.message, refusal.message);
          return true;
        },
      );
    });
  }

  it('refuses a certificate that is not valid at start', () => {
    const later = new Date(Date.now() + 10 * 86_400_000);
    assert.throws(
      () => createPeerTls(good, undefined, later),
      /^PeerTlsError: --peer-tls-cert-file: the certificate is valid from .* to .*, not now$/,
    );
  });

  it('reads the files, and names the flag of a file it cannot read', async () => {
    const files = { certFile: peer.certFile, keyFile: peer.keyFile, caFile: ca.certFile, name: NAME };
    assert.equal((await loadPeerTls(files)).name, NAME);
    const missing = join(dir, 'missing.crt');
    await assert.rejects(loadPeerTls({ ...files, caFile: missing }), {
      name: 'PeerTlsError',
      message: `--peer-tls-ca-file: cannot read ${JSON.stringify(missing)}: ENOENT`,
    });
    const empty = join(dir, 'empty.key');
    await writeFile(empty, '');
    await assert.rejects(
      loadPeerTls({ ...files, keyFile: empty }),
      /--peer-tls-key-file: not a PEM private key/,
    );
  });

  describe('checkPeer on real handshakes', () => {
    /** Connects with `client` to a server using the peer options; resolves to checkPeer's verdict. */
    async function verdict(client: TestCert): Promise<string | undefined> {
      const tls = createPeerTls(good);
      const server = createServer({ ...tls.serverOptions });
      const seen = new Promise<string | undefined>((resolve) =>
        server.once('secureConnection', (socket: TLSSocket) => {
          resolve(tls.checkPeer(socket));
          socket.destroy();
        }),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const socket = connect({
        ...tls.clientOptions,
        cert: client.cert,
        key: client.key,
        host: '127.0.0.1',
        port,
      });
      socket.on('error', () => undefined);
      try {
        return await seen;
      } finally {
        socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    }

    it('accepts a peer certificate carrying the name', async () => {
      assert.equal(await verdict(peer), undefined);
    });

    it('refuses a certificate of the same CA with another name', async () => {
      assert.equal(
        await verdict(wrongName),
        `client certificate: Hostname/IP does not match certificate's altnames: Host: ${NAME}. is not in the cert's altnames: DNS:someone-else.test`,
      );
    });
  });
});
