import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:tls';
import type { Server } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchPresentedChain, normalizePin, parseClusterAddress } from '../client/cluster-trust';

describe('cluster addresses and pins', () => {
  it('parses host:port, IPv6 and a default port', () => {
    expect(parseClusterAddress('auth.example.com:443')).toEqual({ host: 'auth.example.com', port: 443 });
    expect(parseClusterAddress('[::1]:3025')).toEqual({ host: '::1', port: 3025 });
    expect(parseClusterAddress('auth.example.com')).toEqual({ host: 'auth.example.com', port: 3025 });
  });

  it.each(['', 'host:99999', 'a b:1', 'host:port', 'https://x/y'])(
    'rejects the address %j with INVALID_ARGUMENT',
    (text) => {
      expect(() => parseClusterAddress(text)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    },
  );

  it('normalises a pin and rejects anything but sha256:<64 hex>', () => {
    const hex = 'AB'.repeat(32);
    expect(normalizePin(`sha256:${hex}`)).toBe(`sha256:${hex.toLowerCase()}`);
    expect(() => normalizePin('sha256:abc')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => normalizePin(`md5:${hex}`)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('fetchPresentedChain', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('refuses a server that sends no CA with its certificate', async () => {
    // A self-signed leaf with no issuer in the chain: nothing to pin.
    const { x509 } = await import('../auth/ca/x509-library');
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const signingKey = await crypto.subtle.importKey(
      'pkcs8',
      keys.privateKey.export({ type: 'pkcs8', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    );
    const publicKey = await crypto.subtle.importKey(
      'spki',
      keys.publicKey.export({ type: 'spki', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      true,
      ['verify'],
    );
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=leaf',
      keys: { privateKey: signingKey, publicKey },
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
    });
    server = createServer({
      key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      cert: certificate.toString('pem'),
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await expect(fetchPresentedChain({ host: '127.0.0.1', port })).rejects.toMatchObject({
      code: 'CA_PIN_MISMATCH',
    });
  });

  it('reports a closed port as UNAVAILABLE', async () => {
    await expect(fetchPresentedChain({ host: '127.0.0.1', port: 1 }, 2000)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });
});
