// keyport-node's decisions on bytes: sshd's arguments, the offered certificate (made by keyport-auth's own
// signer, and broken on purpose), the local checks, and the connection id from /proc/PID/stat.
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signSshUserCertificate, sshPublicKeyFromKeyObject } from '../auth/ca/ssh';
import {
  checkOffered,
  connectionId,
  NodeRefusal,
  parsePrincipalsArgs,
  readOfferedCertificate,
} from './decision';

const ca = (() => {
  const privateKey = generateKeyPairSync('ed25519').privateKey;
  return { privateKey, publicKey: sshPublicKeyFromKeyObject(privateKey) };
})();
const subject = sshPublicKeyFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);

function certificate(overrides: Partial<Parameters<typeof signSshUserCertificate>[0]> = {}) {
  const line = signSshUserCertificate({
    ca,
    publicKey: subject,
    keyId: 'jerry',
    principals: ['jerry'],
    validAfter: new Date(NOW - 60_000),
    validBefore: new Date(NOW + 60_000),
    serial: 1234567890123n,
    extensions: { 'keyport-session-node@keyport.dev': 'prod3' },
    ...overrides,
  });
  const [type = '', blob = ''] = line.split(' ');
  return { type, blob };
}

const query = (login = 'jerry', serial = '1234567890123') => {
  const { type, blob } = certificate();
  return parsePrincipalsArgs(['principals', '/etc/keyport/node.json', login, type, blob, serial]);
};

describe('keyport-node decisions', () => {
  it('reads the certificate sshd passes (%t %k) as keyport-auth wrote it', () => {
    const { type, blob } = certificate();
    const offered = readOfferedCertificate(type, blob);
    expect(offered).toMatchObject({
      serial: 1234567890123n,
      type: 'user',
      keyId: 'jerry',
      principals: ['jerry'],
      validAfterMs: NOW - 60_000,
      validBeforeMs: NOW + 60_000,
    });
    expect(offered.extensions['keyport-session-node@keyport.dev']).toBe('prod3');
    expect(offered.extensions['permit-pty']).toBe('');
  });

  it('passes a valid certificate for its login, inside its validity', () => {
    const q = query();
    expect(() =>
      checkOffered(q, readOfferedCertificate(q.certificateType, q.certificate), NOW),
    ).not.toThrow();
  });

  it('refuses, before asking keyport-auth: expired, not yet valid, another login, a serial sshd did not see', () => {
    const q = query();
    const offered = readOfferedCertificate(q.certificateType, q.certificate);
    expect(() => checkOffered(q, offered, NOW + 60_000)).toThrow(/has expired/);
    expect(() => checkOffered(q, offered, NOW - 60_001)).toThrow(/not valid yet/);
    expect(() => checkOffered(query('root'), offered, NOW)).toThrow(/does not name the login "root"/);
    expect(() => checkOffered(query('jerry', '1'), offered, NOW)).toThrow(/serial does not match/);
  });

  it('refuses a host certificate offered as a user’s', () => {
    const { type, blob } = certificate({ certificateType: 'host', extensions: {} });
    const q = parsePrincipalsArgs(['principals', '/c', 'jerry', type, blob, '1234567890123']);
    expect(() => checkOffered(q, readOfferedCertificate(type, blob), NOW)).toThrow(/not a user certificate/);
  });

  it('refuses plain keys, other types, non-base64 and truncated blobs with a NodeRefusal', () => {
    const { type, blob } = certificate();
    expect(() => readOfferedCertificate('ssh-ed25519', blob)).toThrow(NodeRefusal);
    expect(() => readOfferedCertificate(type, 'not base64!')).toThrow(/not base64/);
    const bytes = Buffer.from(blob, 'base64');
    expect(() => readOfferedCertificate(type, bytes.subarray(0, 80).toString('base64'))).toThrow(/truncated/);
    expect(() => readOfferedCertificate('ssh-ed25519-cert-v01@openssh.com', blob)).toThrow(
      NodeRefusal,
    );
  });

  it('never throws anything but a NodeRefusal on arbitrary bytes', () => {
    const { type } = certificate();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), (bytes) => {
        try {
          readOfferedCertificate(type, Buffer.from(bytes).toString('base64'));
        } catch (error) {
          expect(error).toBeInstanceOf(NodeRefusal);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('parses sshd’s arguments and refuses anything else', () => {
    expect(() => parsePrincipalsArgs(['principals', '/c', 'jerry', 't', 'k'])).toThrow(/usage/);
    expect(() => parsePrincipalsArgs(['other', '/c', 'jerry', 't', 'k', '1'])).toThrow(/usage/);
    expect(() => parsePrincipalsArgs(['principals', '/c', '', 't', 'k', '1'])).toThrow(/empty/);
  });

  it('names the connection by its sshd process and that process’s start time', () => {
    const stat = '4242 (sshd: jerry [priv]) S 1 4242 4242 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 123 4';
    expect(connectionId(4242, stat)).toBe('4242:987654');
    // A process name with spaces and parentheses does not shift the fields.
    expect(connectionId(7, '7 (a) b) c) S 1 7 7 0 -1 1 1 2 3 4 5 6 7 8 20 0 1 0 55 1 1')).toBe('7:55');
    expect(() => connectionId(1, stat)).toThrow(NodeRefusal);
    expect(() => connectionId(4242, '4242 (sshd) S 1')).toThrow(/start time/);
  });
});
