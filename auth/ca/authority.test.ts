import { X509Certificate, createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, unlink } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CA_DIRECTORY,
  SSH_USER_CA_KEY_FILE,
  TLS_CA_CERT_FILE,
  TLS_CA_KEY_FILE,
  caPin,
  issueHostCertificate,
  loadOrCreateAuthorities,
} from './authority';
import { CaError, InsecureCaFileError } from './errors';
import { x509 } from './x509-library';

const temporaryDirectories: string[] = [];
const servers: tls.Server[] = [];

async function temporaryDataDir(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'keyport-ca-'));
  temporaryDirectories.push(directory);
  return directory;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  await Promise.all(temporaryDirectories.splice(0).map((path) => rm(path, { recursive: true, force: true })));
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('loadOrCreateAuthorities', () => {
  it('creates PKCS#8 key files 0600 in a 0700 directory, and nothing else', async () => {
    const dataDir = await temporaryDataDir();
    await loadOrCreateAuthorities(dataDir, 'prod');

    const caDir = join(dataDir, CA_DIRECTORY);
    expect(await mode(caDir)).toBe(0o700);
    expect((await readdir(caDir)).sort()).toEqual(
      [SSH_USER_CA_KEY_FILE, TLS_CA_CERT_FILE, TLS_CA_KEY_FILE].sort(),
    );
    for (const keyFile of [SSH_USER_CA_KEY_FILE, TLS_CA_KEY_FILE]) {
      expect(await mode(join(caDir, keyFile))).toBe(0o600);
      expect(await readFile(join(caDir, keyFile), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    }
  });

  it('loads the same authorities on the next start', async () => {
    const dataDir = await temporaryDataDir();
    const first = await loadOrCreateAuthorities(dataDir, 'prod');
    const second = await loadOrCreateAuthorities(dataDir, 'prod');

    expect(second.tls.pin).toBe(first.tls.pin);
    expect(second.tls.certPem).toBe(first.tls.certPem);
    expect(second.ssh.publicKey.blob.equals(first.ssh.publicKey.blob)).toBe(true);
  });

  it('gives two services starting at once on an empty data dir the same authorities', async () => {
    const dataDir = await temporaryDataDir();
    const [one, other] = await Promise.all([
      loadOrCreateAuthorities(dataDir, 'prod'),
      loadOrCreateAuthorities(dataDir, 'prod'),
    ]);

    expect(other.tls.pin).toBe(one.tls.pin);
    expect(other.ssh.publicKey.fingerprint).toBe(one.ssh.publicKey.fingerprint);
    expect((await readdir(join(dataDir, CA_DIRECTORY))).length).toBe(3);
  });

  it.each(['644', '640', '604'])('refuses to start when a key file has mode 0%s', async (looseMode) => {
    const dataDir = await temporaryDataDir();
    await loadOrCreateAuthorities(dataDir, 'prod');
    const keyPath = join(dataDir, CA_DIRECTORY, TLS_CA_KEY_FILE);
    await chmod(keyPath, Number.parseInt(looseMode, 8));

    const failure = loadOrCreateAuthorities(dataDir, 'prod');
    await expect(failure).rejects.toBeInstanceOf(InsecureCaFileError);
    await expect(failure).rejects.toMatchObject({ code: 'INTERNAL', path: keyPath });
  });

  it('refuses a CA directory that others can write to', async () => {
    const dataDir = await temporaryDataDir();
    await loadOrCreateAuthorities(dataDir, 'prod');
    await chmod(join(dataDir, CA_DIRECTORY), 0o777);

    await expect(loadOrCreateAuthorities(dataDir, 'prod')).rejects.toBeInstanceOf(InsecureCaFileError);
  });

  it('re-issues a lost CA certificate from the existing key, keeping the pin', async () => {
    const dataDir = await temporaryDataDir();
    const first = await loadOrCreateAuthorities(dataDir, 'prod');
    await unlink(join(dataDir, CA_DIRECTORY, TLS_CA_CERT_FILE));

    const second = await loadOrCreateAuthorities(dataDir, 'prod');
    expect(second.tls.pin).toBe(first.tls.pin);
  });

  it('makes the TLS CA a self-signed P-256 CA certificate named after the cluster, valid 10 years', async () => {
    const dataDir = await temporaryDataDir();
    const { tls: authority } = await loadOrCreateAuthorities(dataDir, 'prod, O=Evil');
    const certificate = new X509Certificate(authority.certPem);
    const parsed = new x509.X509Certificate(authority.certPem);

    expect(parsed.subjectName.getField('CN')).toEqual(['prod, O=Evil Keyport TLS CA']);
    expect(parsed.subjectName.getField('O')).toEqual([]);
    expect(certificate.ca).toBe(true);
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const keyUsage = parsed.getExtension(x509.KeyUsagesExtension);
    expect(keyUsage?.critical).toBe(true);
    expect(keyUsage!.usages & x509.KeyUsageFlags.keyCertSign).toBeTruthy();
    const years = (parsed.notAfter.getTime() - Date.now()) / (365.25 * 24 * 3600 * 1000);
    expect(years).toBeGreaterThan(9.99);
    expect(years).toBeLessThan(10.01);
  });

  it('rejects an empty cluster name', async () => {
    await expect(loadOrCreateAuthorities(await temporaryDataDir(), '')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('caPin', () => {
  it('is sha256 of the DER SubjectPublicKeyInfo, in lowercase hex, whatever form the certificate has', async () => {
    const { tls: authority } = await loadOrCreateAuthorities(await temporaryDataDir(), 'prod');
    const spki = new X509Certificate(authority.certPem).publicKey.export({ type: 'spki', format: 'der' });
    const expected = `sha256:${createHash('sha256').update(spki).digest('hex')}`;

    expect(caPin(authority.certPem)).toBe(expected);
    expect(caPin(new X509Certificate(authority.certPem))).toBe(expected);
    expect(caPin(new x509.X509Certificate(authority.certPem))).toBe(expected);
    expect(authority.pin).toBe(expected);
    expect(expected).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('rejects text that is not a certificate', () => {
    expect(() => caPin('hello')).toThrow(CaError);
  });
});

describe('issueHostCertificate', () => {
  async function serve(chainPem: string, keyPem: string): Promise<number> {
    const server = tls.createServer({ key: keyPem, cert: chainPem }, (socket) => socket.end('ok'));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  interface Connection {
    authorized: boolean;
    peerCertificate: tls.DetailedPeerCertificate;
  }

  function connect(options: tls.ConnectionOptions): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', ...options }, () => {
        resolve({ authorized: socket.authorized, peerCertificate: socket.getPeerCertificate(true) });
        socket.destroy();
      });
      socket.on('error', reject);
    });
  }

  it('is accepted by a TLS client that trusts the CA, by DNS name and by IP address', async () => {
    const authorities = await loadOrCreateAuthorities(await temporaryDataDir(), 'prod');
    const host = await issueHostCertificate(authorities, {
      dnsNames: ['auth.keyport.test'],
      ipAddresses: ['127.0.0.1'],
    });
    const port = await serve(host.chainPem, host.keyPem);
    const ca = authorities.tls.certPem;

    expect((await connect({ port, ca, servername: 'auth.keyport.test' })).authorized).toBe(true);
    expect((await connect({ port, ca })).authorized).toBe(true); // checked against the IP SAN
    await expect(connect({ port, ca, servername: 'other.keyport.test' })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('is rejected by a client that trusts another CA', async () => {
    const authorities = await loadOrCreateAuthorities(await temporaryDataDir(), 'prod');
    const impostor = await loadOrCreateAuthorities(await temporaryDataDir(), 'prod');
    const host = await issueHostCertificate(authorities, {
      dnsNames: ['auth.keyport.test'],
      ipAddresses: [],
    });
    const port = await serve(host.chainPem, host.keyPem);

    await expect(
      connect({ port, ca: impostor.tls.certPem, servername: 'auth.keyport.test' }),
    ).rejects.toMatchObject({ code: 'SELF_SIGNED_CERT_IN_CHAIN' });
  });

  it('sends the CA in the chain, so a first-time client can pin it', async () => {
    const authorities = await loadOrCreateAuthorities(await temporaryDataDir(), 'prod');
    const host = await issueHostCertificate(authorities, { dnsNames: [], ipAddresses: ['127.0.0.1'] });
    const port = await serve(host.chainPem, host.keyPem);

    const { peerCertificate } = await connect({ port, rejectUnauthorized: false });
    expect(caPin(new X509Certificate(peerCertificate.issuerCertificate.raw))).toBe(authorities.tls.pin);
  });

  it('makes a server-auth leaf with the requested SANs and a fresh key', async () => {
    const authorities = await loadOrCreateAuthorities(await temporaryDataDir(), 'prod');
    const names = {
      dnsNames: ['auth.keyport.test', '*.proxy.keyport.test'],
      ipAddresses: ['10.0.0.1', '::1'],
    };
    const one = await issueHostCertificate(authorities, names);
    const other = await issueHostCertificate(authorities, names);
    const certificate = new X509Certificate(one.certPem);

    expect(certificate.ca).toBe(false);
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(certificate.subjectAltName).toBe(
      'DNS:auth.keyport.test, DNS:*.proxy.keyport.test, IP Address:10.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(certificate.checkIssued(authorities.tls.certificate)).toBe(true);
    expect(certificate.verify(authorities.tls.certificate.publicKey)).toBe(true);
    expect(one.chainPem).toBe(one.certPem + authorities.tls.certPem);
    expect(one.keyPem).not.toBe(other.keyPem);
  });

  it.each([
    { dnsNames: [], ipAddresses: [] },
    { dnsNames: ['not a name'], ipAddresses: [] },
    { dnsNames: [], ipAddresses: ['999.1.1.1'] },
  ])('rejects host names %j', async (names) => {
    const authorities = await loadOrCreateAuthorities(await temporaryDataDir(), 'prod');
    await expect(issueHostCertificate(authorities, names)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
