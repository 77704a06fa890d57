// keyport-node's decisions on bytes: sshd's arguments, the offered certificate (made by ssh-keygen, and
// broken on purpose), the local checks, and the connection id from /proc/PID/stat.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkOffered,
  connectionId,
  NodeRefusal,
  parsePrincipalsArgs,
  readOfferedCertificate,
} from './decision';

// Certificates made by OpenSSH itself (ssh-keygen -s), so keyport-node's reader is checked against the
// format's reference implementation, not against keyport-auth's own writer.
const dir = mkdtempSync(join(tmpdir(), 'kp-node-decision-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'ca')]);
execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-f', join(dir, 'user')]);
let made = 0;

function certificate(options: { host?: boolean } = {}) {
  const key = join(dir, `user${++made}`);
  execFileSync('cp', [join(dir, 'user.pub'), `${key}.pub`]);
  execFileSync('ssh-keygen', [
    '-q',
    '-s',
    join(dir, 'ca'),
    '-I',
    'jerry',
    '-n',
    'jerry',
    '-z',
    '1234567890123',
    '-V',
    '-1m:+1m',
    ...(options.host ? ['-h'] : ['-O', 'extension:keyport-session-node@keyport.dev=prod3']),
    `${key}.pub`,
  ]);
  const [type = '', blob = ''] = readFileSync(`${key}-cert.pub`, 'utf8').trim().split(' ');
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
    });
    // -V -1m:+1m: two minutes, around the time it was made.
    expect(offered.validBeforeMs - offered.validAfterMs).toBe(120_000);
    expect(Math.abs(offered.validAfterMs + 60_000 - Date.now())).toBeLessThan(10 * 60_000);
    expect(offered.extensions['keyport-session-node@keyport.dev']).toBe('prod3');
    expect(offered.extensions['permit-pty']).toBe('');
  });

  it('passes a valid certificate for its login, inside its validity', () => {
    const q = query();
    const offered = readOfferedCertificate(q.certificateType, q.certificate);
    expect(() => checkOffered(q, offered, offered.validAfterMs + 1)).not.toThrow();
  });

  it('refuses, before asking keyport-auth: expired, not yet valid, another login, a serial sshd did not see', () => {
    const q = query();
    const offered = readOfferedCertificate(q.certificateType, q.certificate);
    const now = offered.validAfterMs + 60_000;
    expect(() => checkOffered(q, offered, offered.validBeforeMs)).toThrow(/has expired/);
    expect(() => checkOffered(q, offered, offered.validAfterMs - 1)).toThrow(/not valid yet/);
    expect(() => checkOffered(query('root'), offered, now)).toThrow(/does not name the login "root"/);
    expect(() => checkOffered(query('jerry', '1'), offered, now)).toThrow(/serial does not match/);
  });

  it('refuses a host certificate offered as a user’s', () => {
    const { type, blob } = certificate({ host: true });
    const q = parsePrincipalsArgs(['principals', '/c', 'jerry', type, blob, '1234567890123']);
    const offered = readOfferedCertificate(type, blob);
    expect(() => checkOffered(q, offered, offered.validAfterMs + 1)).toThrow(/not a user certificate/);
  });

  it('refuses plain keys, other types, non-base64 and truncated blobs with a NodeRefusal', () => {
    const { type, blob } = certificate();
    expect(() => readOfferedCertificate('ssh-ed25519', blob)).toThrow(NodeRefusal);
    expect(() => readOfferedCertificate(type, 'not base64!')).toThrow(/not base64/);
    const bytes = Buffer.from(blob, 'base64');
    expect(() => readOfferedCertificate(type, bytes.subarray(0, 80).toString('base64'))).toThrow(/truncated/);
    expect(() => readOfferedCertificate('ssh-ed25519-cert-v01@openssh.com', blob)).toThrow(NodeRefusal);
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
