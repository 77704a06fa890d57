// Cross-check of auth/tpm/ against a real TPM 2.0 (swtpm, lab/tpm.ts) driven by tpm2-tools: our
// MakeCredential is opened by the TPM's ActivateCredential, our verifyQuote accepts the TPM's quotes
// (and refuses them for another nonce, a flipped byte, another AK), our Name matches the TPM's, and
// the swtpm EK certificate verifies under the lab manufacturer CA with the EK's own public key.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkAttestationKey,
  spkiFingerprint,
  verifyEkCertificate,
  verifyQuote,
} from '../auth/tpm/attestation';
import { makeCredential } from '../auth/tpm/credential';
import { TpmRefusal } from '../auth/tpm/errors';
import { TpmWriter } from '../auth/tpm/marshal';
import {
  TPMA_OBJECT,
  TPM_ALG,
  encodeTpmtPublic,
  parseTpmtPublic,
  publicKeyOf,
  tpmName,
} from '../auth/tpm/structures';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

const run = promisify(execFile);
let tpm: LabTpm;
let dir: string;

async function tool(name: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(name, args, {
    cwd: dir,
    env: { ...process.env, TPM2TOOLS_TCTI: tpm.tcti },
    timeout: 60_000,
  });
  return stdout;
}

/** No resource manager: flush what a step left loaded. */
const flush = async () => {
  await tool('tpm2_flushcontext', '-t');
  await tool('tpm2_flushcontext', '-s');
};
const file = (name: string) => new Uint8Array(readFileSync(join(dir, name)));

async function createAk(prefix: string, alg: 'ecc' | 'rsa'): Promise<void> {
  const scheme = alg === 'ecc' ? 'ecdsa' : 'rsassa';
  await tool('tpm2_createak', '-C', 'ek.ctx', '-c', `${prefix}.ctx`, '-G', alg, '-g', 'sha256', '-s', scheme);
  await tool(
    'tpm2_readpublic',
    '-c',
    `${prefix}.ctx`,
    '-f',
    'tpmt',
    '-o',
    `${prefix}.pub`,
    '-n',
    `${prefix}.name`,
  );
  await flush();
}

/** ActivateCredential with the EK (its policy: PolicySecret on the endorsement hierarchy). */
async function activate(ak: string, credential: Uint8Array, secret: Uint8Array): Promise<Uint8Array> {
  // tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
  const blob = new TpmWriter().u32(0xbadcc0de).u32(1).tpm2b(credential).tpm2b(secret).finish();
  writeFileSync(join(dir, 'cred.in'), blob);
  rmSync(join(dir, 'cred.out'), { force: true });
  try {
    await tool('tpm2_startauthsession', '--policy-session', '-S', 'session.ctx');
    await tool('tpm2_policysecret', '-S', 'session.ctx', '-c', 'e');
    await tool(
      'tpm2_activatecredential',
      ...['-c', `${ak}.ctx`, '-C', 'ek.ctx', '-i', 'cred.in', '-o', 'cred.out', '-P', 'session:session.ctx'],
    );
    return file('cred.out');
  } finally {
    await flush();
  }
}

async function quote(ak: string, nonce: Uint8Array): Promise<{ attest: Uint8Array; signature: Uint8Array }> {
  const q = ['-c', `${ak}.ctx`, '-l', 'sha256:0,1,2,3', '-q', Buffer.from(nonce).toString('hex')];
  await tool('tpm2_quote', ...q, '-m', 'attest.bin', '-s', 'sig.bin', '-g', 'sha256');
  await flush();
  return { attest: file('attest.bin'), signature: file('sig.bin') };
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof TpmRefusal) return error.reason;
    throw error;
  }
  return 'accepted';
}

describe('auth/tpm against swtpm + tpm2-tools', () => {
  beforeAll(async () => {
    tpm = await startLabTpm();
    dir = mkdtempSync(join(tmpdir(), 'keyport-tpm-test-'));
    await tool('tpm2_createek', '-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub', '-f', 'tpmt');
    await flush();
    await tool('tpm2_readpublic', '-c', 'ek.ctx', '-n', 'ek.name', '-o', 'ek.tss');
    await flush();
    await createAk('ak', 'ecc');
    await createAk('ak2', 'ecc');
    await createAk('akrsa', 'rsa');
    await tool('tpm2_nvread', '0x01c00002', '-o', 'ekcert.der');
    await flush();
  });

  afterAll(async () => {
    await tpm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('parses the EK (template L-1) and AK exactly, and computes the Names the TPM computes', () => {
    const ek = parseTpmtPublic(file('ek.pub'), 'ek_public');
    expect(ek).toMatchObject({
      type: TPM_ALG.RSA,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0x000300b2,
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
      scheme: { scheme: TPM_ALG.NULL },
      keyBits: 2048,
      exponent: 0,
    });
    expect(encodeTpmtPublic(ek)).toEqual(file('ek.pub'));
    expect(tpmName(file('ek.pub'))).toEqual(file('ek.name'));
    const ak = checkAttestationKey(file('ak.pub'));
    expect(ak.public.objectAttributes).toBe(
      TPMA_OBJECT.fixedTPM |
        TPMA_OBJECT.fixedParent |
        TPMA_OBJECT.sensitiveDataOrigin |
        TPMA_OBJECT.userWithAuth |
        TPMA_OBJECT.restricted |
        TPMA_OBJECT.sign,
    );
    expect(ak.name).toEqual(file('ak.name'));
    expect(encodeTpmtPublic(ak.public)).toEqual(file('ak.pub'));
    expect(checkAttestationKey(file('akrsa.pub')).name).toEqual(file('akrsa.name'));
    expect(refusal(() => checkAttestationKey(file('ek.pub')))).toBe('not-restricted-signing-key');
  });

  it("verifies swtpm's EK certificate under the lab CA, with the EK's own key", () => {
    const now = new Date();
    const ek = verifyEkCertificate(file('ekcert.der'), [tpm.manufacturerCaPem], now);
    const fromTpm = publicKeyOf(parseTpmtPublic(file('ek.pub'), 'ek_public'));
    expect(ek.fingerprint).toBe(spkiFingerprint(fromTpm));
    expect(ek.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(refusal(() => verifyEkCertificate(file('ekcert.der'), [], now))).toBe('ek-certificate-untrusted');
    const before = new Date(Date.now() - 3 * 86_400_000);
    expect(refusal(() => verifyEkCertificate(file('ekcert.der'), [tpm.manufacturerCaPem], before))).toBe(
      'ek-certificate-untrusted',
    );
  });

  it('our MakeCredential (EK from the certificate) is opened by the TPM for that AK only', async () => {
    const { key } = verifyEkCertificate(file('ekcert.der'), [tpm.manufacturerCaPem], new Date());
    const secret = randomBytes(32);
    const made = makeCredential({ ekPublic: key, akName: file('ak.name'), credential: secret });
    expect(Buffer.from(await activate('ak', made.credential, made.secret))).toEqual(secret);
    // The same blob presented with another AK loaded fails the TPM's integrity check.
    await expect(activate('ak2', made.credential, made.secret)).rejects.toThrow();
  });

  it('our MakeCredential (EK as TPMT_PUBLIC, RSA AK) is opened by the TPM', async () => {
    const secret = randomBytes(20);
    const ekPublic = parseTpmtPublic(file('ek.pub'), 'ek_public');
    const made = makeCredential({ ekPublic, akName: file('akrsa.name'), credential: secret });
    expect(Buffer.from(await activate('akrsa', made.credential, made.secret))).toEqual(secret);
  });

  it("verifies the TPM's quotes and refuses another nonce, a flipped byte, another AK", async () => {
    const nonce = randomBytes(32);
    const { attest, signature } = await quote('ak', nonce);
    const ak = file('ak.pub');
    const quoted = verifyQuote({ akPublic: ak, attest, signature, nonce });
    expect(quoted.attested.kind).toBe('quote');
    expect(quoted.qualifiedSigner.length).toBe(34);
    expect(Buffer.from(quoted.extraData)).toEqual(nonce);
    if (quoted.attested.kind === 'quote') {
      expect(quoted.attested.quote.pcrSelect).toEqual([
        { hash: TPM_ALG.SHA256, select: Uint8Array.of(0x0f, 0, 0) },
      ]);
      expect(quoted.attested.quote.pcrDigest.length).toBe(32);
    }
    expect(refusal(() => verifyQuote({ akPublic: ak, attest, signature, nonce: randomBytes(32) }))).toBe(
      'nonce-mismatch',
    );
    for (const at of [6, 20, attest.length - 1]) {
      const flipped = Uint8Array.from(attest);
      flipped[at]! ^= 0x01;
      expect(refusal(() => verifyQuote({ akPublic: ak, attest: flipped, signature, nonce }))).toBe(
        'bad-signature',
      );
    }
    const badSig = Uint8Array.from(signature);
    badSig[10]! ^= 0x80;
    expect(refusal(() => verifyQuote({ akPublic: ak, attest, signature: badSig, nonce }))).toBe(
      'bad-signature',
    );
    const magic = Uint8Array.from(attest);
    magic[0] = 0;
    expect(refusal(() => verifyQuote({ akPublic: ak, attest: magic, signature, nonce }))).toBe('bad-magic');
    expect(refusal(() => verifyQuote({ akPublic: file('ak2.pub'), attest, signature, nonce }))).toBe(
      'bad-signature',
    );
    expect(refusal(() => verifyQuote({ akPublic: file('akrsa.pub'), attest, signature, nonce }))).toBe(
      'bad-signature',
    );
  });

  it('verifies a quote by an RSA (RSASSA-SHA256) AK', async () => {
    const nonce = randomBytes(20);
    const { attest, signature } = await quote('akrsa', nonce);
    expect(verifyQuote({ akPublic: file('akrsa.pub'), attest, signature, nonce }).type).toBe(0x8018);
    expect(refusal(() => verifyQuote({ akPublic: file('ak.pub'), attest, signature, nonce }))).toBe(
      'bad-signature',
    );
  });
});
