import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateAuthorities } from './authority';
import type { Authorities } from './authority';
import { CaError } from './errors';
import {
  parseSshCertificate,
  parseSshPublicKey,
  parseSshPublicKeyOf,
  signSshUserCertificate,
  sshCaPublicKeyLine,
  sshPublicKeyFromKeyObject,
  sshPublicKeyLine,
} from './ssh';
import type { SshPublicKey, SshUserCertificateRequest } from './ssh';
import { sshString } from './ssh-wire';

let workDir: string;
let authorities: Authorities;
let otherAuthorities: Authorities;
/** A certificate of ours, where a test needs one as input. */
let certificateLine: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'keyport-ssh-'));
  authorities = await loadOrCreateAuthorities(join(workDir, 'data'), 'prod');
  otherAuthorities = await loadOrCreateAuthorities(join(workDir, 'other'), 'prod');
  certificateLine = await signSshUserCertificate(request());
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Runs the real ssh-keygen; times are printed in UTC. */
function sshKeygen(...args: string[]): string {
  return execFileSync('ssh-keygen', args, {
    encoding: 'utf8',
    env: { ...process.env, TZ: 'UTC' },
    stdio: 'pipe',
  });
}

async function writeWorkFile(name: string, contents: string): Promise<string> {
  const path = join(workDir, name);
  await writeFile(path, contents.endsWith('\n') ? contents : `${contents}\n`);
  return path;
}

const ed25519UserKey = () =>
  sshPublicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey, 'alice@laptop');
const p256UserKey = () =>
  sshPublicKeyFromKeyObject(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, 'alice@laptop');

function request(overrides: Partial<SshUserCertificateRequest> = {}): SshUserCertificateRequest {
  return {
    ca: authorities.ssh,
    publicKey: ed25519UserKey(),
    keyId: 'alice',
    principals: ['alice', 'root'],
    validAfter: new Date('2030-01-02T03:04:05Z'),
    validBefore: new Date('2030-01-02T15:04:05Z'),
    extensions: {
      'keyport-roles@keyport.dev': JSON.stringify(['dev', 'ops']),
      'keyport-mfa-verified@keyport.dev': '',
    },
    criticalOptions: { 'source-address': '10.0.0.0/8' },
    serial: 42n,
    ...overrides,
  };
}

function blobOf(line: string): Buffer {
  return Buffer.from(line.split(' ')[1]!, 'base64');
}

function lineWithBlob(line: string, blob: Buffer): string {
  const [algorithm, , ...comment] = line.split(' ');
  return [algorithm, blob.toString('base64'), ...comment].join(' ');
}

describe('signSshUserCertificate', () => {
  it.each([
    ['Ed25519', ed25519UserKey, 'ssh-ed25519-cert-v01@openssh.com', 'ED25519-CERT'],
    ['P-256', p256UserKey, 'ecdsa-sha2-nistp256-cert-v01@openssh.com', 'ECDSA-CERT'],
  ])('makes a %s user certificate that ssh-keygen -L reads', async (_, makeKey, algorithm, keyLabel) => {
    const userKey = makeKey();
    const line = await signSshUserCertificate(request({ publicKey: userKey }));
    expect(line.startsWith(`${algorithm} AAAA`)).toBe(true);
    expect(line.endsWith(' alice')).toBe(true);

    const printed = sshKeygen('-L', '-f', await writeWorkFile('user-cert.pub', line));
    expect(printed).toContain(`Type: ${algorithm} user certificate`);
    expect(printed).toContain(`Public key: ${keyLabel} ${userKey.fingerprint}`);
    expect(printed).toContain(
      `Signing CA: ED25519 ${authorities.ssh.publicKey.fingerprint} (using ssh-ed25519)`,
    );
    expect(printed).toContain('Key ID: "alice"');
    expect(printed).toContain('Serial: 42');
    expect(printed).toContain('Valid: from 2030-01-02T03:04:05 to 2030-01-02T15:04:05');
    expect(printed).toMatch(/Principals: *\n\s+alice\n\s+root\n/);
    expect(printed).toMatch(/Critical Options: *\n\s+source-address 10\.0\.0\.0\/8\n/);
    // Byte order, as PROTOCOL.certkeys requires: "permit-X11..." sorts before "permit-agent...".
    const extensionLines = printed.split('Extensions:')[1]!.trim().split('\n');
    expect(extensionLines.map((text) => text.trim().split(' ')[0])).toEqual([
      'keyport-mfa-verified@keyport.dev',
      'keyport-roles@keyport.dev',
      'permit-X11-forwarding',
      'permit-agent-forwarding',
      'permit-port-forwarding',
      'permit-pty',
      'permit-user-rc',
    ]);
    // A valued extension holds the value as an SSH string inside the data string, as OpenSSH writes it.
    const roles = sshString(JSON.stringify(['dev', 'ops'])).toString('hex');
    expect(extensionLines[1]).toContain(`UNKNOWN OPTION: ${roles}`);
  });

  it('round-trips through parseSshCertificate, signature verified', async () => {
    const userKey = p256UserKey();
    const certificate = parseSshCertificate(await signSshUserCertificate(request({ publicKey: userKey })), {
      trustedCa: authorities.ssh.publicKey,
    });

    expect(certificate).toMatchObject({
      algorithm: 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
      certificateType: 'user',
      serial: 42n,
      keyId: 'alice',
      principals: ['alice', 'root'],
      validAfter: new Date('2030-01-02T03:04:05Z'),
      validBefore: new Date('2030-01-02T15:04:05Z'),
      criticalOptions: { 'source-address': '10.0.0.0/8' },
      extensions: {
        'keyport-roles@keyport.dev': '["dev","ops"]',
        'keyport-mfa-verified@keyport.dev': '',
        'permit-pty': '',
        'permit-port-forwarding': '',
        'permit-agent-forwarding': '',
        'permit-X11-forwarding': '',
        'permit-user-rc': '',
      },
      comment: 'alice',
    });
    expect(certificate.nonce.length).toBe(32);
    expect(certificate.publicKey.blob.equals(userKey.blob)).toBe(true);
    expect(certificate.signatureKey.fingerprint).toBe(authorities.ssh.publicKey.fingerprint);
  });

  it('withholds standard extensions that are not asked for, and draws a fresh serial and nonce', async () => {
    const lines = await Promise.all(
      [1, 2].map(() =>
        signSshUserCertificate(
          request({ serial: undefined, standardExtensions: ['permit-pty'], extensions: {} }),
        ),
      ),
    );
    const [one, other] = lines.map((line) => parseSshCertificate(line));

    expect(one!.extensions).toEqual({ 'permit-pty': '' });
    expect(one!.serial).not.toBe(other!.serial);
    expect(one!.nonce.equals(other!.nonce)).toBe(false);
  });

  it.each<[string, Partial<SshUserCertificateRequest>]>([
    ['no principals', { principals: [] }],
    ['an empty principal', { principals: [''] }],
    ['a key id with a newline', { keyId: 'alice\nssh-ed25519 AAAA' }],
    ['validBefore not after validAfter', { validBefore: new Date('2030-01-02T03:04:05Z') }],
    ['an invalid date', { validAfter: new Date(Number.NaN) }],
    ['a custom extension without @domain', { extensions: { 'keyport-roles': '[]' } }],
    ['a custom critical option without @domain', { criticalOptions: { 'be-nice': '' } }],
    ['a serial beyond 64 bits', { serial: 1n << 64n }],
    ['an RSA public key line', { publicKey: `ssh-rsa ${sshString('ssh-rsa').toString('base64')}` }],
  ])('rejects %s with INVALID_ARGUMENT', async (_, overrides) => {
    await expect(signSshUserCertificate(request(overrides))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('parseSshCertificate', () => {
  it('rejects every single-byte change to a certificate', async () => {
    const line = await signSshUserCertificate(request());
    const blob = blobOf(line);
    for (let index = 0; index < blob.length; index += 1) {
      const tampered = Buffer.from(blob);
      tampered[index] = tampered[index]! ^ 0x01;
      expect(() => parseSshCertificate(lineWithBlob(line, tampered)), `byte ${index}`).toThrow(CaError);
    }
  });

  it('reports a well-formed but altered certificate as UNAUTHENTICATED, and ssh-keygen agrees', async () => {
    const line = await signSshUserCertificate(request({ principals: ['alice'] }));
    const blob = blobOf(line);
    const at = blob.indexOf('alice', blob.indexOf('alice') + 1); // the principal, after the key id
    blob.write('mallo', at);
    const tampered = lineWithBlob(line, blob);

    expect(() => parseSshCertificate(tampered)).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    const tamperedPath = await writeWorkFile('tampered-cert.pub', tampered);
    expect(() => sshKeygen('-L', '-f', tamperedPath)).toThrow(/signature|invalid/i);
  });

  it('rejects a certificate from another CA when ours is required', async () => {
    const line = await signSshUserCertificate(request({ ca: otherAuthorities.ssh }));

    expect(parseSshCertificate(line).signatureKey.fingerprint).toBe(
      otherAuthorities.ssh.publicKey.fingerprint,
    );
    expect(() => parseSshCertificate(line, { trustedCa: authorities.ssh.publicKey })).toThrow(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
  });

  it.each(['ed25519', 'ecdsa'])(
    'reads a certificate that ssh-keygen signed with an %s CA',
    async (caType) => {
      const caPath = join(workDir, `keygen-${caType}-ca`);
      await rm(caPath, { force: true });
      await rm(`${caPath}.pub`, { force: true });
      sshKeygen(
        '-q',
        '-t',
        caType,
        ...(caType === 'ecdsa' ? ['-b', '256'] : []),
        '-N',
        '',
        '-C',
        '',
        '-f',
        caPath,
      );
      const userKeyPath = await writeWorkFile(
        `keygen-${caType}-user.pub`,
        sshPublicKeyLine(ed25519UserKey()),
      );
      sshKeygen(
        '-s',
        caPath,
        '-I',
        'bob@keygen',
        '-n',
        'bob,deploy',
        '-z',
        '7',
        '-V',
        '20300102030405:20300103030405',
        '-O',
        'force-command=/usr/bin/true',
        '-O',
        'extension:keyport-roles@keyport.dev=["dev"]',
        '-O',
        'extension:keyport-mfa-verified@keyport.dev',
        userKeyPath,
      );
      const caKey = parseSshPublicKey(await readFile(`${caPath}.pub`, 'utf8'));
      const certificate = parseSshCertificate(
        await readFile(userKeyPath.replace(/\.pub$/, '-cert.pub'), 'utf8'),
        { trustedCa: caKey },
      );

      expect(certificate).toMatchObject({
        keyId: 'bob@keygen',
        serial: 7n,
        principals: ['bob', 'deploy'],
        validAfter: new Date('2030-01-02T03:04:05Z'),
        validBefore: new Date('2030-01-03T03:04:05Z'),
        criticalOptions: { 'force-command': '/usr/bin/true' },
      });
      expect(certificate.extensions['keyport-roles@keyport.dev']).toBe('["dev"]');
      expect(certificate.extensions['keyport-mfa-verified@keyport.dev']).toBe('');
    },
  );

  it('rejects a plain public key and unsupported certificate types', async () => {
    expect(() => parseSshCertificate(sshPublicKeyLine(ed25519UserKey()))).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    const line = await signSshUserCertificate(request());
    expect(() => parseSshCertificate(line.replace(/^ssh-ed25519-cert/, 'ssh-rsa-cert'))).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('parseSshPublicKey', () => {
  it.each(['ed25519', 'ecdsa'])('reads an %s key written by ssh-keygen, with its comment', async (type) => {
    const path = join(workDir, `parse-${type}`);
    await rm(path, { force: true });
    await rm(`${path}.pub`, { force: true });
    sshKeygen(
      '-q',
      '-t',
      type,
      ...(type === 'ecdsa' ? ['-b', '256'] : []),
      '-N',
      '',
      '-C',
      'carol@desk',
      '-f',
      path,
    );
    const line = await readFile(`${path}.pub`, 'utf8');

    const key = parseSshPublicKey(line);
    expect(key.comment).toBe('carol@desk');
    expect(sshKeygen('-l', '-f', `${path}.pub`)).toContain(key.fingerprint);
    expect(sshPublicKeyLine(key)).toBe(line.trim());
  });

  const ed25519Line = () => sshPublicKeyLine(ed25519UserKey());
  const p256Key = () => p256UserKey();
  const withBlob = (algorithm: string, blob: Buffer) => `${algorithm} ${blob.toString('base64')}`;
  const truncated = (key: SshPublicKey) => withBlob(key.algorithm, key.blob.subarray(0, key.blob.length - 1));
  const p256Point = (key: SshPublicKey) => key.blob.subarray(key.blob.length - 65);

  it.each<[string, () => string]>([
    ['an empty line', () => ''],
    ['garbage', () => 'not a key at all'],
    ['a lone algorithm name', () => 'ssh-ed25519'],
    [
      'an RSA key',
      () => withBlob('ssh-rsa', Buffer.concat([sshString('ssh-rsa'), sshString('\x01\x00\x01')])),
    ],
    ['a DSA key', () => withBlob('ssh-dss', sshString('ssh-dss'))],
    ['a P-384 key', () => withBlob('ecdsa-sha2-nistp384', sshString('ecdsa-sha2-nistp384'))],
    ['a FIDO key', () => withBlob('sk-ssh-ed25519@openssh.com', sshString('sk-ssh-ed25519@openssh.com'))],
    ['authorized_keys options', () => `no-pty ${ed25519Line()}`],
    ['a certificate', () => certificateLine],
    ['non-canonical base64', () => ed25519Line().replace(' AAAA', ' AA*AA')],
    ['two lines', () => `${ed25519Line()}\n${ed25519Line()}`],
    ['a truncated Ed25519 blob', () => truncated(ed25519UserKey())],
    ['a truncated P-256 blob', () => truncated(p256Key())],
    ['trailing bytes', () => withBlob('ssh-ed25519', Buffer.concat([ed25519UserKey().blob, Buffer.of(0)]))],
    ['a type that disagrees with the blob', () => withBlob('ecdsa-sha2-nistp256', ed25519UserKey().blob)],
    [
      'a 31-byte Ed25519 key',
      () => withBlob('ssh-ed25519', Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.alloc(31))])),
    ],
    [
      'a P-256 point off the curve',
      () => {
        const key = p256Key();
        const blob = Buffer.from(key.blob);
        blob[blob.length - 1] = blob[blob.length - 1]! ^ 0x01;
        return withBlob(key.algorithm, blob);
      },
    ],
    [
      'a compressed P-256 point',
      () => {
        const key = p256Key();
        const point = p256Point(key);
        const compressed = Buffer.concat([Buffer.of(0x02 | (point[64]! & 1)), point.subarray(1, 33)]);
        const blob = Buffer.concat([sshString(key.algorithm), sshString('nistp256'), sshString(compressed)]);
        return withBlob(key.algorithm, blob);
      },
    ],
  ])('rejects %s with INVALID_ARGUMENT, also when a key is known', (_, makeLine) => {
    const line = makeLine();
    expect(() => parseSshPublicKey(line)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => parseSshPublicKeyOf(line, p256Key())).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('takes the known key object for a line of the same key, and parses any other line in full', () => {
    const known = p256Key();
    const same = parseSshPublicKeyOf(`${known.algorithm} ${known.blob.toString('base64')} dave@desk`, known);
    expect(same.key).toBe(known.key);
    expect(same).toMatchObject({ algorithm: known.algorithm, comment: 'dave@desk' });
    expect(same.fingerprint).toBe(known.fingerprint);
    expect(same.blob.equals(known.blob)).toBe(true);

    const other = ed25519UserKey();
    const parsed = parseSshPublicKeyOf(sshPublicKeyLine(other), known);
    expect(parsed.key).not.toBe(known.key);
    expect(parsed.key.equals(other.key)).toBe(true);
    expect(parsed.fingerprint).toBe(other.fingerprint);
  });

  it("refuses a line with the known key's blob under another algorithm name", () => {
    const known = ed25519UserKey();
    expect(() => parseSshPublicKeyOf(withBlob('ecdsa-sha2-nistp256', known.blob), known)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('sshCaPublicKeyLine', () => {
  it('is a public key line that ssh-keygen reads, for TrustedUserCAKeys', async () => {
    const line = sshCaPublicKeyLine(authorities);
    expect(line).toMatch(/^ssh-ed25519 AAAA\S+ prod Keyport SSH user CA$/);
    const printed = sshKeygen('-l', '-f', await writeWorkFile('ca.pub', line));
    expect(printed).toContain(authorities.ssh.publicKey.fingerprint);
    expect(parseSshPublicKey(line).blob.equals(authorities.ssh.publicKey.blob)).toBe(true);
  });
});
