// The lab's virtual PIV card on a real pcscd (vsmartcard vpcd, in a private network namespace), driven
// by the real host tools a YubiKey is driven with: yubico-piv-tool (3DES management key, as its 2.2
// speaks only 3DES), and OpenSC (piv-tool with the AES-192 default key of YubiKey 5.7, and its PKCS#11
// module for signatures). Attestation is checked with openssl against the lab root.
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../auth/ca/x509-library';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { YUBICO_OID } from '../lab/piv/attestation';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';

const OPENSC_PKCS11 = '/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so';
const DEFAULT_KEY_COLONS = '01:02:03:04:05:06:07:08:01:02:03:04:05:06:07:08:01:02:03:04:05:06:07:08';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(command, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The bytes of piv-tool's dump: up to 16 "XX " groups at the start of each line, then an ASCII column. */
function hexDump(text: string): Buffer {
  const lines = text.split('\n').map((line) => /^(?:[0-9A-F]{2} ){1,16}/.exec(line)?.[0] ?? '');
  return Buffer.from(lines.join('').replace(/ /g, ''), 'hex');
}

describe('the lab PIV card on a real pcscd', () => {
  let work: string;
  let clock: LabClock;
  let card: LabPivCard; // 3DES management key, manual touch, on the lab clock: yubico-piv-tool
  let aesCard: LabPivCard; // the YubiKey 5.7 default: AES-192 management key: OpenSC
  let caKey: string;
  let caCert: string;

  const ykpiv = (...args: string[]) => run('yubico-piv-tool', ['-r', card.readerName, ...args], card.env);

  /** A certificate for a slot's public key (signed by a throwaway CA): test-signature needs one. */
  async function certify(publicKeyPem: string, name: string): Promise<string> {
    const pub = join(work, `${name}.pub.pem`);
    const cert = join(work, `${name}.cert.pem`);
    writeFileSync(pub, publicKeyPem);
    const made = await run('openssl', [
      'x509',
      '-new',
      '-force_pubkey',
      pub,
      '-subj',
      `/CN=${name}`,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-out',
      cert,
    ]);
    expect(made.stderr).toBe('');
    return cert;
  }

  async function generate(slot: string, pinPolicy: string, touchPolicy: string): Promise<string> {
    const out = join(work, `${slot}.pub.pem`);
    const generated = await ykpiv(
      '-a',
      'generate',
      '-s',
      slot,
      '-A',
      'ECCP256',
      `--pin-policy=${pinPolicy}`,
      `--touch-policy=${touchPolicy}`,
      '-o',
      out,
    );
    expect(generated.stderr).toContain('Successfully generated a new private key.');
    const cert = await certify(readFileSync(out, 'utf8'), slot);
    const imported = await ykpiv('-a', 'import-certificate', '-s', slot, '-i', cert);
    expect(imported.stderr).toContain('Successfully imported a new certificate.');
    return cert;
  }

  /** yubico-piv-tool's test-signature: the card signs a SHA-256 digest, the tool verifies with the cert. */
  const testSignature = (slot: string, cert: string, pin = true) =>
    ykpiv(
      ...(pin ? ['-a', 'verify-pin', '-P', '123456'] : []),
      '-a',
      'test-signature',
      '-s',
      slot,
      '-A',
      'ECCP256',
      '-i',
      cert,
    );

  const touchesSeen = () => {
    let count = 0;
    const onTouch = () => (count += 1);
    card.events.on('touch-needed', onTouch);
    return { count: () => count, stop: () => card.events.off('touch-needed', onTouch) };
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'keyport-piv-test-'));
    clock = createLabClock();
    caKey = join(work, 'ca.key');
    caCert = join(work, 'ca.pem');
    [card, aesCard] = await Promise.all([
      startLabPivCard({
        managementKeyAlgorithm: '3des',
        touch: 'manual',
        touchTimeoutMs: 10_000,
        env: clock.env,
      }),
      startLabPivCard({}),
      run('openssl', [
        'req',
        '-x509',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        caKey,
        '-subj',
        '/CN=test CA',
        '-out',
        caCert,
      ]),
    ]).then(([a, b]) => [a, b] as const);
  });

  afterAll(async () => {
    await Promise.all([card?.stop(), aesCard?.stop()]);
    clock?.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it("pcscd shows the reader, and the card's YubiKey-like ATR (pcsc_scan, opensc-tool)", async () => {
    const readers = await run('pcsc_scan', ['-r'], card.env);
    expect(readers.stdout).toContain('Virtual PCD 00 00');
    const atr = await run('opensc-tool', ['-r', '0', '-a'], card.env);
    expect(atr.stdout.trim()).toBe('3b:fd:13:00:00:81:31:fe:15:80:73:c0:21:c0:57:59:75:62:69:4b:65:79:40');
    expect((await run('opensc-tool', ['-r', '0', '-n'], card.env)).stdout).toContain(
      'Personal Identity Verification Card',
    );
  });

  it('yubico-piv-tool reads the version, serial and PIN tries', async () => {
    const status = await ykpiv('-a', 'version', '-a', 'status');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('Application version 5.7.1 found.');
    expect(status.stdout).toContain(`Serial Number:\t${card.serial}`);
    expect(status.stdout).toContain('PIN tries left:\t3');
  });

  it('yubico-piv-tool generates a key with PIN policy once and touch policy always; it signs only after the PIN and a touch', async () => {
    const cert = await generate('9a', 'once', 'always');
    const touches = touchesSeen();
    const withoutPin = await testSignature('9a', cert, false);
    expect(withoutPin.code).not.toBe(0);
    expect(touches.count()).toBe(0); // the PIN is checked before a touch is asked

    for (let i = 0; i < 2; i++) {
      const signing = testSignature('9a', cert);
      await card.nextTouchRequest();
      expect(await card.touch()).toBe(true);
      const signed = await signing;
      expect(signed.stdout + signed.stderr).toContain('Successful ECDSA verification.');
    }
    expect(touches.count()).toBe(2); // one touch per signature
    touches.stop();

    const denied = testSignature('9a', cert);
    await card.nextTouchRequest();
    await card.touch('deny');
    expect((await denied).code).not.toBe(0);
  });

  it('a touch-cached key signs without a new touch within 15 s on the lab clock, and asks again after', async () => {
    const cert = await generate('9d', 'never', 'cached');
    clock.advance(15_000); // the card's touch cache is one for all slots: let the last test's touch lapse
    const touches = touchesSeen();
    const first = await card.touchingWhile(() => testSignature('9d', cert, false));
    expect(first.stdout + first.stderr).toContain('Successful ECDSA verification.');
    expect(touches.count()).toBe(1);
    clock.advance(14_000);
    await card.stats({ reset: true });
    const cached = await testSignature('9d', cert, false); // no finger: it would wait and fail
    expect((await card.stats()).byIns['87']).toBe(1); // one GENERAL AUTHENTICATE per signature
    expect(cached.stdout + cached.stderr).toContain('Successful ECDSA verification.');
    expect(touches.count()).toBe(1);
    clock.advance(1_000);
    const again = await card.touchingWhile(() => testSignature('9d', cert, false));
    expect(again.code).toBe(0);
    expect(touches.count()).toBe(2);
    touches.stop();
  });

  it('yubico-piv-tool attests the key; openssl verifies the chain to the lab root; the policies are in it', async () => {
    const attestation = join(work, 'attestation-9a.pem');
    const f9 = join(work, 'f9.pem');
    const root = join(work, 'root.pem');
    writeFileSync(root, card.attestationRootPem);
    expect((await ykpiv('-a', 'attest', '-s', '9a', '-o', attestation)).code).toBe(0);
    expect((await ykpiv('-a', 'read-certificate', '-s', 'f9', '-o', f9)).code).toBe(0);
    const verified = await run('openssl', ['verify', '-CAfile', root, '-untrusted', f9, attestation]);
    expect(verified.stdout.trim()).toBe(`${attestation}: OK`);
    const otherRoot = join(work, 'other-root.pem');
    writeFileSync(otherRoot, aesCard.attestationRootPem);
    expect(
      (await run('openssl', ['verify', '-CAfile', otherRoot, '-untrusted', f9, attestation])).code,
    ).not.toBe(0);

    const leaf = new x509.X509Certificate(readFileSync(attestation, 'utf8'));
    expect(
      Buffer.from(leaf.getExtension(YUBICO_OID.policy)?.value ?? new ArrayBuffer(0)).toString('hex'),
    ).toBe('0202');
    const generated = createPublicKey(readFileSync(join(work, '9a.pub.pem'), 'utf8'));
    const attested = new X509Certificate(readFileSync(attestation, 'utf8')).publicKey;
    expect(attested.export({ format: 'jwk' })).toEqual(generated.export({ format: 'jwk' }));
  });

  it('a wrong PIN counts down and blocks; the PUK unblocks it (yubico-piv-tool)', async () => {
    const said = async (...args: string[]) => {
      const ran = await ykpiv(...args);
      return ran.stdout + ran.stderr;
    };
    expect(await said('-a', 'verify-pin', '-P', '000000')).toContain('2 tries left');
    expect(await said('-a', 'verify-pin', '-P', '000000')).toContain('1 tries left');
    expect(await said('-a', 'verify-pin', '-P', '000000')).toContain('Pin code blocked');
    expect(await said('-a', 'verify-pin', '-P', '123456')).toContain('Pin code blocked');
    expect(await said('-a', 'unblock-pin', '-P', '12345678', '-N', '654321')).toContain(
      'Successfully unblocked',
    );
    expect(await said('-a', 'change-pin', '-P', '654321', '-N', '123456')).toContain('Successfully changed');
    expect(await said('-a', 'status')).toContain('PIN tries left:\t3');
  });

  it('OpenSC authenticates with the AES-192 default management key, generates, and signs through PKCS#11', async () => {
    const keyFile = join(work, 'admin-key');
    writeFileSync(keyFile, DEFAULT_KEY_COLONS);
    const opensc = { ...aesCard.env, PIV_EXT_AUTH_KEY: keyFile };
    // piv-tool -A then a raw GENERATE in the same session (its -G cannot read EC keys under OpenSSL 3).
    const generated = await run('piv-tool', ['-A', 'M:9B:0A', '-s', '00:47:00:9E:05:AC:03:80:01:11'], opensc);
    expect(generated.stdout).toContain('SW1=0x90, SW2=0x00');
    const point = hexDump(generated.stdout.slice(generated.stdout.indexOf('7F 49'))).subarray(5, 70);
    const publicKey = createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: point.subarray(1, 33).toString('base64url'),
        y: point.subarray(33).toString('base64url'),
      },
      format: 'jwk',
    });
    const cert = await certify(publicKey.export({ type: 'spki', format: 'pem' }).toString(), '9e-opensc');
    await run('piv-tool', ['-A', 'M:9B:0A', '-C', '9E', '-i', cert], opensc);

    const wrongKey = join(work, 'wrong-key');
    writeFileSync(wrongKey, DEFAULT_KEY_COLONS.replace(/^01/, '00'));
    expect(
      (await run('piv-tool', ['-A', 'M:9B:0A'], { ...aesCard.env, PIV_EXT_AUTH_KEY: wrongKey })).code,
    ).not.toBe(0);

    const message = join(work, 'message');
    const digest = join(work, 'message.sha256');
    const signature = join(work, 'message.sig');
    writeFileSync(message, 'sign me');
    writeFileSync(digest, createHash('sha256').update('sign me').digest());
    const signed = await run(
      'pkcs11-tool',
      [
        '--module',
        OPENSC_PKCS11,
        '--login',
        '--pin',
        '123456',
        '--sign',
        '-m',
        'ECDSA',
        '--id',
        '04',
        '--signature-format',
        'openssl',
        '-i',
        digest,
        '-o',
        signature,
      ],
      aesCard.env,
    );
    expect(signed.code).toBe(0);
    const pub = join(work, '9e-opensc.pub.pem');
    expect(
      (
        await run('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', signature, message])
      ).stdout.trim(),
    ).toBe('Verified OK');
  });

  it('a pulled card is gone for clients, and back with its keys when put in again', async () => {
    await card.remove();
    await expect.poll(async () => (await ykpiv('-a', 'status')).code).not.toBe(0);
    await card.insert();
    const status = await ykpiv('-a', 'status');
    expect(status).toMatchObject({ code: 0, stdout: expect.stringContaining('Slot 9a:') });
  });

  it('the card is back in its reader after pcscd restarts', async () => {
    await card.restartPcscd();
    const status = await ykpiv('-a', 'version');
    expect(status.stdout).toContain('Application version 5.7.1 found.');
    expect((await ykpiv('-a', 'attest', '-s', '9a')).stdout).toContain('BEGIN CERTIFICATE');
  });
});
