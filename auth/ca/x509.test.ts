import { execFileSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueHostCertificate, loadOrCreateAuthorities } from './authority';
import type { Authorities } from './authority';
import { CLIENT_IDENTITY_EXTENSION_OID, issueClientCertificate, verifyClientCertificate } from './x509';
import type { ClientCertificateRequest } from './x509';
import { ECDSA_P256_SHA256, x509 } from './x509-library';

let workDir: string;
let authorities: Authorities;
let otherAuthorities: Authorities;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'keyport-x509-'));
  authorities = await loadOrCreateAuthorities(join(workDir, 'data'), 'prod');
  // Same cluster name, so the issuer names match and only the key tells the two CAs apart.
  otherAuthorities = await loadOrCreateAuthorities(join(workDir, 'other'), 'prod');
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

const NOT_BEFORE = new Date('2030-01-02T03:04:05Z');
const NOT_AFTER = new Date('2030-01-02T15:04:05Z');
const DURING = new Date('2030-01-02T09:00:00Z');

const clientKeys: Record<string, () => { privateKey: KeyObject; publicKey: KeyObject }> = {
  'P-256': () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  Ed25519: () => generateKeyPairSync('ed25519'),
};

function publicKeyPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

function request(overrides: Partial<ClientCertificateRequest> = {}): ClientCertificateRequest {
  return {
    authorities,
    publicKeyPem: publicKeyPem(clientKeys['P-256']!().publicKey),
    user: 'alice',
    roles: ['dev', 'ops'],
    logins: ['alice', 'root'],
    mfaVerified: true,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    extra: { deviceId: 'dev-123' },
    ...overrides,
  };
}

/** Signs a client certificate with our CA key but arbitrary contents, to hand the verifier bad input. */
async function signRawClientCertificate(options: { commonName: string; extensions: x509.Extension[] }) {
  const caCertificate = new x509.X509Certificate(authorities.tls.certPem);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject: [{ CN: [options.commonName] }],
    issuer: caCertificate.subjectName,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    publicKey: clientKeys['P-256']!().publicKey.export({ type: 'spki', format: 'der' }),
    signingKey: authorities.tls.signingKey,
    signingAlgorithm: ECDSA_P256_SHA256,
    extensions: [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(caCertificate.publicKey),
      ...options.extensions,
    ],
  });
  return certificate.toString('pem');
}

function identityExtension(value: Buffer): x509.Extension {
  return new x509.Extension(CLIENT_IDENTITY_EXTENSION_OID, false, value);
}

function utf8StringOf(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 127) throw new Error('test helper handles short strings only');
  return Buffer.concat([Buffer.of(0x0c, bytes.length), bytes]);
}

/** The TBSCertificate of a DER certificate: the first element inside its outer SEQUENCE. */
function tbsOf(der: Buffer): Buffer {
  const lengthAt = (offset: number): { length: number; header: number } => {
    const first = der[offset + 1]!;
    if (first < 0x80) return { length: first, header: 2 };
    const bytes = first & 0x7f;
    return { length: der.readUIntBE(offset + 2, bytes), header: 2 + bytes };
  };
  const outer = lengthAt(0);
  const inner = lengthAt(outer.header);
  return der.subarray(outer.header, outer.header + inner.header + inner.length);
}

describe('issueClientCertificate', () => {
  // The certificate is assembled from DER parts (a login's hot path); @peculiar/x509's generator is the
  // reference it must match byte for byte, whatever the key, the name's length or the century.
  it.each([
    ['P-256', 'alice', NOT_BEFORE, NOT_AFTER],
    ['Ed25519', 'bob', NOT_BEFORE, NOT_AFTER],
    ['P-256', `long-${'x'.repeat(150)}`, NOT_BEFORE, NOT_AFTER],
    // Not all PrintableString: the common name is a UTF8String.
    ['P-256', 'dave_ops@example.com', NOT_BEFORE, NOT_AFTER],
    ['Ed25519', 'zoë', NOT_BEFORE, NOT_AFTER],
    ['P-256', "Erin O'Neil (ops) +1, a=b: c/d?", NOT_BEFORE, NOT_AFTER],
    ['P-256', 'carol', new Date('2049-12-31T23:59:59Z'), new Date('2050-01-01T00:00:00Z')],
  ] as const)(
    'assembles the TBSCertificate @peculiar/x509 would, for a %s key and user %s',
    async (keyType, user, notBefore, notAfter) => {
      const publicKey = clientKeys[keyType]!().publicKey;
      const serial = 0x1234567890abcdefn;
      const extra = { 'keyport-device-id': 'd-1', 'keyport-device-asset-tag': 'C00AA0AAAA0A' };
      const issued = await issueClientCertificate(
        request({ publicKeyPem: publicKeyPem(publicKey), user, serial, notBefore, notAfter, extra }),
      );
      const caCertificate = new x509.X509Certificate(authorities.tls.certPem);
      const identityJson = JSON.stringify({
        user,
        roles: ['dev', 'ops'],
        logins: ['alice', 'root'],
        mfaVerified: true,
        ...extra,
      });
      const identityBytes = Buffer.from(identityJson, 'utf8');
      // DER's shortest length form: one byte below 128, then 0x81 n, then 0x82 n n.
      const n = identityBytes.length;
      const length =
        n < 128 ? Buffer.of(n) : n < 256 ? Buffer.of(0x81, n) : Buffer.of(0x82, n >> 8, n & 0xff);
      const reference = await x509.X509CertificateGenerator.create({
        serialNumber: serial.toString(16),
        subject: [{ CN: [user] }],
        issuer: caCertificate.subjectName,
        notBefore,
        notAfter,
        publicKey: publicKey.export({ type: 'spki', format: 'der' }),
        signingKey: authorities.tls.signingKey,
        signingAlgorithm: ECDSA_P256_SHA256,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          await x509.AuthorityKeyIdentifierExtension.create(caCertificate.publicKey),
          identityExtension(Buffer.concat([Buffer.of(0x0c), length, identityBytes])),
        ],
      });
      expect(tbsOf(issued.certDer).toString('hex')).toBe(
        tbsOf(Buffer.from(reference.rawData)).toString('hex'),
      );
      // And OpenSSL takes it: parsed, issued by the CA, signature valid.
      const parsed = new X509Certificate(issued.certDer);
      const ca = new X509Certificate(authorities.tls.certPem);
      expect(parsed.checkIssued(ca)).toBe(true);
      expect(parsed.verify(ca.publicKey)).toBe(true);
    },
  );

  it.each(Object.keys(clientKeys))('certifies a %s client key under the TLS CA', async (keyType) => {
    const clientKey = clientKeys[keyType]!();
    const issued = await issueClientCertificate(request({ publicKeyPem: publicKeyPem(clientKey.publicKey) }));
    const certificate = new X509Certificate(issued.certPem);

    expect(certificate.verify(authorities.tls.certificate.publicKey)).toBe(true);
    expect(certificate.checkIssued(authorities.tls.certificate)).toBe(true);
    expect(certificate.subject).toBe('CN=alice');
    expect(certificate.ca).toBe(false);
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(certificate.publicKey.equals(clientKey.publicKey)).toBe(true);
    expect(certificate.raw.equals(issued.certDer)).toBe(true);
    expect(BigInt(`0x${certificate.serialNumber}`)).toBe(issued.serial);

    expect(verifyClientCertificate(authorities, issued.certDer, DURING)).toMatchObject({
      user: 'alice',
      roles: ['dev', 'ops'],
      logins: ['alice', 'root'],
      mfaVerified: true,
      extra: { deviceId: 'dev-123' },
      serial: issued.serial,
      notBefore: NOT_BEFORE,
      notAfter: NOT_AFTER,
    });
  });

  it('writes the identity as a non-critical extension that OpenSSL names by its dotted OID', async () => {
    const { certPem } = await issueClientCertificate(request());
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: certPem, encoding: 'utf8' });

    expect(text).toContain(`${CLIENT_IDENTITY_EXTENSION_OID}: \n`);
    expect(text).toContain(
      '{"user":"alice","roles":["dev","ops"],"logins":["alice","root"],"mfaVerified":true',
    );
  });

  it('keeps a caller-chosen serial, including one whose first bit is set', async () => {
    const serial = 0xff00000000000000000000000000000001n;
    const issued = await issueClientCertificate(request({ serial }));
    expect(issued.serial).toBe(serial);
    expect(verifyClientCertificate(authorities, issued.certPem, DURING).serial).toBe(serial);
  });

  it.each<[string, Partial<ClientCertificateRequest>]>([
    ['an extra field shadowing the user', { extra: { user: 'root' } }],
    ['an extra field shadowing mfaVerified', { extra: { mfaVerified: 'true' } }],
    ['an empty user', { user: '' }],
    ['a role with a newline', { roles: ['dev\nadmin'] }],
    ['notAfter before notBefore', { notAfter: new Date(NOT_BEFORE.getTime() - 1000) }],
    ['a zero serial', { serial: 0n }],
    [
      'a private key',
      { publicKeyPem: clientKeys.Ed25519!().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
    ],
    [
      'an RSA key',
      { publicKeyPem: publicKeyPem(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey) },
    ],
    [
      'a P-384 key',
      { publicKeyPem: publicKeyPem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey) },
    ],
  ])('rejects %s with INVALID_ARGUMENT', async (_, overrides) => {
    await expect(issueClientCertificate(request(overrides))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('verifyClientCertificate', () => {
  it('accepts the certificate from its first to its last second', async () => {
    const { certPem } = await issueClientCertificate(request());
    expect(verifyClientCertificate(authorities, certPem, NOT_BEFORE).user).toBe('alice');
    expect(verifyClientCertificate(authorities, certPem, NOT_AFTER).user).toBe('alice');
  });

  it.each([
    ['expired', new Date(NOT_AFTER.getTime() + 1000)],
    ['not yet valid', new Date(NOT_BEFORE.getTime() - 1000)],
  ])('reports a certificate that is %s as CERTIFICATE_EXPIRED', async (_, now) => {
    const { certPem } = await issueClientCertificate(request());
    expect(() => verifyClientCertificate(authorities, certPem, now)).toThrow(
      expect.objectContaining({ code: 'CERTIFICATE_EXPIRED' }),
    );
  });

  it('reports a certificate from another CA as UNAUTHENTICATED, even when expired', async () => {
    const { certPem } = await issueClientCertificate(request({ authorities: otherAuthorities }));
    for (const now of [DURING, new Date(NOT_AFTER.getTime() + 1000)]) {
      expect(() => verifyClientCertificate(authorities, certPem, now)).toThrow(
        expect.objectContaining({ code: 'UNAUTHENTICATED' }),
      );
    }
  });

  it('reports a certificate with an altered identity as UNAUTHENTICATED', async () => {
    const { certDer } = await issueClientCertificate(request({ roles: ['dev'] }));
    const tampered = Buffer.from(certDer);
    const at = tampered.indexOf('"dev"');
    tampered.write('"ops"', at);
    expect(() => verifyClientCertificate(authorities, tampered, DURING)).toThrow(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
  });

  const identity = { user: 'alice', roles: [], logins: [], mfaVerified: false };
  it.each<[string, () => Promise<string>]>([
    ['no identity extension', () => signRawClientCertificate({ commonName: 'alice', extensions: [] })],
    [
      'an identity that is not a UTF8String',
      () =>
        signRawClientCertificate({
          commonName: 'alice',
          extensions: [identityExtension(Buffer.of(0x04, 0x00))],
        }),
    ],
    [
      'an identity that is not JSON',
      () =>
        signRawClientCertificate({
          commonName: 'alice',
          extensions: [identityExtension(utf8StringOf('{user'))],
        }),
    ],
    [
      'an identity without a user',
      () =>
        signRawClientCertificate({
          commonName: 'alice',
          extensions: [identityExtension(utf8StringOf('{"roles":[],"logins":[],"mfaVerified":false}'))],
        }),
    ],
    [
      'an identity whose roles are not a list',
      () =>
        signRawClientCertificate({
          commonName: 'alice',
          extensions: [identityExtension(utf8StringOf(JSON.stringify({ ...identity, roles: 'admin' })))],
        }),
    ],
    [
      'an identity with trailing bytes',
      () =>
        signRawClientCertificate({
          commonName: 'alice',
          extensions: [
            identityExtension(Buffer.concat([utf8StringOf(JSON.stringify(identity)), Buffer.of(0)])),
          ],
        }),
    ],
    [
      'a subject that differs from the identity',
      () =>
        signRawClientCertificate({
          commonName: 'root',
          extensions: [identityExtension(utf8StringOf(JSON.stringify(identity)))],
        }),
    ],
    [
      'the service’s own server certificate',
      async () => (await issueHostCertificate(authorities, { dnsNames: ['alice'], ipAddresses: [] })).certPem,
    ],
    ['the CA certificate', async () => authorities.tls.certPem],
    ['bytes that are not a certificate', async () => 'garbage'],
  ])('reports %s as UNAUTHENTICATED', async (_, makeCertificate) => {
    const certificate = await makeCertificate();
    expect(() => verifyClientCertificate(authorities, certificate, DURING)).toThrow(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
  });

  it('reads a hand-made identity extension that is well formed (the negative cases above are not vacuous)', async () => {
    const certPem = await signRawClientCertificate({
      commonName: 'alice',
      extensions: [identityExtension(utf8StringOf(JSON.stringify(identity)))],
    });
    expect(verifyClientCertificate(authorities, certPem, DURING)).toMatchObject({ ...identity, extra: {} });
  });

  it.each(Object.keys(clientKeys))(
    'authenticates a %s client in a real mutual-TLS handshake',
    async (keyType) => {
      const clientKey = clientKeys[keyType]!();
      const client = await issueClientCertificate(
        request({
          publicKeyPem: publicKeyPem(clientKey.publicKey),
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 3_600_000),
        }),
      );
      const host = await issueHostCertificate(authorities, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
      const presented = new Promise<Buffer>((resolve, reject) => {
        const server = tls.createServer(
          {
            key: host.keyPem,
            cert: host.chainPem,
            ca: authorities.tls.certPem,
            requestCert: true,
            rejectUnauthorized: true,
          },
          (socket) => {
            resolve(socket.getPeerCertificate().raw);
            socket.end();
            server.close();
          },
        );
        server.on('tlsClientError', reject);
        server.listen(0, '127.0.0.1', () => {
          const { port } = server.address() as AddressInfo;
          const socket = tls.connect({
            host: '127.0.0.1',
            port,
            ca: authorities.tls.certPem,
            key: clientKey.privateKey.export({ type: 'pkcs8', format: 'pem' }),
            cert: client.certPem,
          });
          socket.on('error', reject);
          socket.on('close', () => socket.destroy());
          socket.resume();
        });
      });

      expect(verifyClientCertificate(authorities, await presented, new Date()).user).toBe('alice');
    },
  );
});
