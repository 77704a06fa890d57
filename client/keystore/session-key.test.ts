import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodeSshPublicKeyBlob,
  formatSshPublicKey,
  generateSessionKey,
  sshPublicKeyFromPrivatePem,
} from './index';
import type { SessionKeyAlgorithm } from './index';

const execFileAsync = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'keyport-sessionkey-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const expectations: Record<SessionKeyAlgorithm, { prefix: string; keyType: string; sshKeygenLabel: string }> =
  {
    ed25519: { prefix: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5', keyType: 'ed25519', sshKeygenLabel: '(ED25519)' },
    'ecdsa-p256': {
      prefix: 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY',
      keyType: 'ec',
      sshKeygenLabel: '(ECDSA)',
    },
  };

describe.each(Object.keys(expectations) as SessionKeyAlgorithm[])('generateSessionKey(%s)', (algorithm) => {
  const expected = expectations[algorithm];
  const key = generateSessionKey(algorithm);

  it('returns PKCS#8 and SPKI PEM of the same key pair', () => {
    expect(key.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    expect(key.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    const derivedPublic = createPublicKey(key.privateKeyPem).export({ format: 'pem', type: 'spki' });
    expect(derivedPublic).toBe(key.publicKeyPem);
    expect(createPublicKey(key.publicKeyPem).asymmetricKeyType).toBe(expected.keyType);
  });

  it('gives an authorized_keys line that ssh-keygen accepts, with the fingerprint of our blob', async () => {
    expect(key.sshPublicKey.startsWith(expected.prefix)).toBe(true);
    const pubFile = join(scratch, `${algorithm}.pub`);
    writeFileSync(pubFile, `${key.sshPublicKey} keyport-test\n`);
    const { stdout } = await execFileAsync('ssh-keygen', ['-l', '-f', pubFile]);

    const blob = Buffer.from(key.sshPublicKey.split(' ')[1] ?? '', 'base64');
    const fingerprint = createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
    expect(stdout.trim()).toBe(`256 SHA256:${fingerprint} keyport-test ${expected.sshKeygenLabel}`);
  });

  it('derives the same line from the private key PEM', () => {
    expect(sshPublicKeyFromPrivatePem(key.privateKeyPem)).toBe(key.sshPublicKey);
  });
});

describe('SSH public key encoding', () => {
  it('matches what OpenSSH derives from the private key (ECDSA; OpenSSH 9.2 cannot load PKCS#8 Ed25519)', async () => {
    const key = generateSessionKey('ecdsa-p256');
    const keyFile = join(scratch, 'ecdsa.key');
    writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
    const { stdout } = await execFileAsync('ssh-keygen', ['-y', '-f', keyFile]);
    expect(stdout.trim()).toBe(key.sshPublicKey);
  });

  it('encodes the RFC 8032 test vector 1 public key byte for byte', () => {
    const publicKey = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
    const blob = encodeSshPublicKeyBlob({ algorithm: 'ssh-ed25519', publicKey });
    expect(Buffer.from(blob).toString('hex')).toBe(
      '0000000b' + Buffer.from('ssh-ed25519').toString('hex') + '00000020' + publicKey.toString('hex'),
    );
    expect(formatSshPublicKey({ algorithm: 'ssh-ed25519', publicKey })).toBe(
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea',
    );
  });

  it('rejects malformed points and unsupported key types', () => {
    expect(() =>
      encodeSshPublicKeyBlob({ algorithm: 'ecdsa-sha2-nistp256', uncompressedPoint: new Uint8Array(33) }),
    ).toThrow(TypeError);
    expect(() => encodeSshPublicKeyBlob({ algorithm: 'ssh-ed25519', publicKey: new Uint8Array(31) })).toThrow(
      TypeError,
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
      format: 'pem',
      type: 'pkcs8',
    });
    expect(() => sshPublicKeyFromPrivatePem(rsa.toString())).toThrow(/Unsupported session key type rsa/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({
      format: 'pem',
      type: 'pkcs8',
    });
    expect(() => sshPublicKeyFromPrivatePem(p384.toString())).toThrow(
      /Unsupported session key type ec P-384/,
    );
  });
});
