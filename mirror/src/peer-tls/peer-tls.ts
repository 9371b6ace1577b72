// Mutual TLS between daemons. Every daemon of a cluster holds the same certificate (one Secret,
// e.g. issued by cert-manager) whose DNS name is the cluster's peer identity. Peers are addressed
// by pod IP, so the IP is never what is checked: each side verifies the other's certificate
// against the cluster CA and checks that it carries the identity name, the client through
// `servername`, the server on every accepted connection (Node checks no name on client certificates).
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate, type TLSSocket, type TlsOptions } from 'node:tls';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { PeerTlsClientOptions } from '../peer-transport/peer-http-client.js';

/** The lowest TLS version spoken between peers: both ends are Peili, nothing older to support. */
export const PEER_TLS_MIN_VERSION = 'TLSv1.3';

/** Where the material comes from, as configured (`--peer-tls-*`). */
export interface PeerTlsFiles {
  /** PEM certificate (chain) this daemon presents, as server and as client. */
  readonly certFile: string;
  /** PEM private key of that certificate. */
  readonly keyFile: string;
  /** PEM CA certificate(s) a peer's certificate must chain to. */
  readonly caFile: string;
  /** DNS name every peer certificate must carry (a SAN). */
  readonly name: string;
}

/** The PEM texts and the identity name. */
export interface PeerTlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly name: string;
}

/** Names of the settings each field came from, for error messages. */
export interface PeerTlsFields {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly name: string;
}

/** The daemon's flag names, the default {@link PeerTlsFields}. */
export const PEER_TLS_FLAGS: PeerTlsFields = Object.freeze({
  cert: '--peer-tls-cert-file',
  key: '--peer-tls-key-file',
  ca: '--peer-tls-ca-file',
  name: '--peer-tls-name',
});

/** Invalid or unreadable TLS material; the message starts with the setting at fault. */
export class PeerTlsError extends Error {
  override readonly name = 'PeerTlsError';
}

/** Peer TLS, validated: options for listeners and clients, and the name check of accepted peers. */
export interface PeerTls {
  /** The identity name every peer certificate carries. */
  readonly name: string;
  /** Listener options: present our certificate, require a client certificate issued by the CA. */
  readonly serverOptions: Readonly<TlsOptions>;
  /** Client options: verify the server against the CA and the name, present our certificate. */
  readonly clientOptions: Readonly<PeerTlsClientOptions>;
  /**
   * Checks the certificate a connected client presented (already verified against the CA by the
   * handshake): undefined when it carries the identity name, else why not.
   */
  checkPeer(socket: TLSSocket): string | undefined;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function certificates(pem: string, field: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new PeerTlsError(`${field}: no PEM certificate found`);
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new PeerTlsError(`${field}: certificate ${index + 1} is invalid: ${(error as Error).message}`);
    }
  });
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/** DNS names of a certificate's subjectAltName, for messages. */
function dnsNames(cert: X509Certificate): string {
  return cert.subjectAltName ?? '(no subjectAltName)';
}

/**
 * Validates the material (certificates parse, the key is the certificate's, the certificate is
 * valid now, carries the name and chains to a CA of the bundle) and builds the options.
 * Throws {@link PeerTlsError} naming the field at fault.
 */
export function createPeerTls(
  material: PeerTlsMaterial,
  fields: PeerTlsFields = PEER_TLS_FLAGS,
  now: Date = new Date(),
): PeerTls {
  const { name } = material;
  if (isIP(name) !== 0 || !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(name)) {
    throw new PeerTlsError(
      `${fields.name}: expected a DNS name like peili-peer.kube-system, got ${JSON.stringify(name)}`,
    );
  }
  const chain = certificates(material.cert, fields.cert);
  const authorities = certificates(material.ca, fields.ca);
  const leaf = chain[0]!;
  let key;
  try {
    key = createPrivateKey(material.key);
  } catch (error) {
    throw new PeerTlsError(`${fields.key}: not a PEM private key: ${(error as Error).message}`);
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new PeerTlsError(`${fields.key}: the key does not belong to the certificate in ${fields.cert}`);
  }
  if (now < new Date(leaf.validFrom) || now > new Date(leaf.validTo)) {
    throw new PeerTlsError(
      `${fields.cert}: the certificate is valid from ${leaf.validFrom} to ${leaf.validTo}, not now`,
    );
  }
  if (leaf.checkHost(name, { wildcards: false, subject: 'never' }) === undefined) {
    throw new PeerTlsError(
      `${fields.name}: the certificate in ${fields.cert} does not carry the DNS name ${JSON.stringify(name)} (it has ${dnsNames(leaf)})`,
    );
  }
  // The chain as sent: each certificate issued by the next, the last one by a CA of the bundle.
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!issuedBy(chain[i]!, chain[i + 1]!)) {
      throw new PeerTlsError(`${fields.cert}: certificate ${i + 1} is not issued by certificate ${i + 2}`);
    }
  }
  const top = chain[chain.length - 1]!;
  if (!authorities.some((ca) => ca.fingerprint256 === top.fingerprint256 || issuedBy(top, ca))) {
    throw new PeerTlsError(`${fields.cert}: the certificate is not issued by a CA in ${fields.ca}`);
  }

  const serverOptions: TlsOptions = Object.freeze({
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: PEER_TLS_MIN_VERSION,
  });
  const clientOptions: Readonly<PeerTlsClientOptions> = Object.freeze({
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    servername: name,
    minVersion: PEER_TLS_MIN_VERSION,
  });
  return {
    name,
    serverOptions,
    clientOptions,
    checkPeer(socket) {
      if (!socket.authorized) return `client certificate refused: ${String(socket.authorizationError)}`;
      const cert = socket.getPeerCertificate();
      if (cert === null || Object.keys(cert).length === 0) return 'no client certificate';
      const mismatch = checkServerIdentity(name, cert as PeerCertificate);
      return mismatch === undefined ? undefined : `client certificate: ${mismatch.message}`;
    },
  };
}

async function readPem(path: string, field: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new PeerTlsError(`${field}: cannot read ${JSON.stringify(path)}: ${code}`);
  }
}

/** Reads the three files and validates them with {@link createPeerTls}. */
export async function loadPeerTls(
  files: PeerTlsFiles,
  fields: PeerTlsFields = PEER_TLS_FLAGS,
): Promise<PeerTls> {
  const [cert, key, ca] = await Promise.all([
    readPem(files.certFile, fields.cert),
    readPem(files.keyFile, fields.key),
    readPem(files.caFile, fields.ca),
  ]);
  return createPeerTls({ cert, key, ca, name: files.name }, fields);
}
