// The TPM helper and its TypeScript client against real software TPMs (lab/tpm.ts: swtpm with its own
// manufacturer CA). Credentials are made by tpm2-tools, a TSS other than the helper's.
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTpm } from '../client/hardware/tpm/helper';
import type { TpmHelper, TpmKey } from '../client/hardware/tpm/helper';
import { KeyportError } from '../proto/errors';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

const helperPath = fileURLToPath(new URL('../native/tpm-helper/build/keyport-tpm-helper', import.meta.url));
execFileSync(process.execPath, [
  fileURLToPath(new URL('../native/tpm-helper/build.mjs', import.meta.url)),
  '--if-stale',
]);

// ---- just enough TPM2 structure reading for the checks (the server has its own parsers) ----

class Reader {
  offset = 0;
  constructor(readonly bytes: Uint8Array) {}
  u16() {
    const v = ((this.bytes[this.offset] ?? 0) << 8) | (this.bytes[this.offset + 1] ?? 0);
    this.offset += 2;
    return v;
  }
  u32() {
    return this.u16() * 0x10000 + this.u16();
  }
  take(n: number) {
    const out = this.bytes.subarray(this.offset, this.offset + n);
    if (out.length !== n) throw new Error('short structure');
    this.offset += n;
    return out;
  }
  sized() {
    return this.take(this.u16());
  }
}

function rsaModulus(publicArea: Uint8Array): Uint8Array {
  const r = new Reader(publicArea);
  expect(r.u16()).toBe(0x0001); // TPM_ALG_RSA
  expect(r.u16()).toBe(0x000b); // nameAlg SHA-256
  r.u32(); // attributes
  r.sized(); // authPolicy
  if (r.u16() !== 0x0010) r.take(4); // symmetric: keyBits, mode
  if (r.u16() !== 0x0010) r.take(2); // scheme
  expect(r.u16()).toBe(2048);
  r.u32(); // exponent
  const modulus = r.sized();
  expect(r.offset).toBe(publicArea.length);
  return modulus;
}

function eccPoint(publicArea: Uint8Array): { x: Uint8Array; y: Uint8Array } {
  const r = new Reader(publicArea);
  expect(r.u16()).toBe(0x0023); // TPM_ALG_ECC
  expect(r.u16()).toBe(0x000b);
  r.u32();
  r.sized();
  if (r.u16() !== 0x0010) r.take(4);
  expect(r.u16()).toBe(0x0018); // ECDSA
  expect(r.u16()).toBe(0x000b); // with SHA-256
  expect(r.u16()).toBe(0x0003); // NIST P-256
  if (r.u16() !== 0x0010) r.take(2);
  const x = r.sized();
  const y = r.sized();
  expect(r.offset).toBe(publicArea.length);
  return { x, y };
}

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const u16be = (n: number) => Buffer.from([n >> 8, n & 0xff]);

function verifyQuote(ak: TpmKey, attest: Uint8Array, signature: Uint8Array): boolean {
  const { x, y } = eccPoint(ak.publicArea);
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64url(x), y: b64url(y) },
    format: 'jwk',
  });
  const r = new Reader(signature);
  expect(r.u16()).toBe(0x0018); // sigAlg ECDSA
  expect(r.u16()).toBe(0x000b); // hash SHA-256
  const sigR = r.sized();
  const sigS = r.sized();
  const raw = Buffer.concat([Buffer.alloc(32 - sigR.length), sigR, Buffer.alloc(32 - sigS.length), sigS]);
  return verify('sha256', attest, { key, dsaEncoding: 'ieee-p1363' }, raw);
}

/** MakeCredential by tpm2-tools (no TPM involved): the blob and secret for `activate`. */
function makeCredential(ekPublic: Uint8Array, akName: Uint8Array, secret: Uint8Array) {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-mkcred-'));
  try {
    writeFileSync(join(dir, 'ek.pub'), Buffer.concat([u16be(ekPublic.length), ekPublic])); // TPM2B_PUBLIC
    writeFileSync(join(dir, 'secret'), secret);
    execFileSync(
      'tpm2_makecredential',
      [
        '-T',
        'none',
        '-u',
        join(dir, 'ek.pub'),
        '-s',
        join(dir, 'secret'),
        '-n',
        Buffer.from(akName).toString('hex'),
        '-o',
        join(dir, 'cred'),
      ],
      { stdio: 'pipe' },
    );
    // tpm2-tools' file: magic BADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    const r = new Reader(new Uint8Array(readFileSync(join(dir, 'cred'))));
    expect(r.u32()).toBe(0xbadcc0de);
    expect(r.u32()).toBe(1);
    return { credential: r.sized(), secret: r.sized() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function expectKeyportError(promise: Promise<unknown>, code: string, message?: RegExp) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  expect((error as KeyportError).code).toBe(code);
  if (message) expect((error as KeyportError).message).toMatch(message);
  return error as KeyportError;
}

describe('keyport-tpm-helper against swtpm', () => {
  let lab: LabTpm;
  let tpm: TpmHelper;
  let ak: TpmKey;

  beforeAll(async () => {
    lab = await startLabTpm();
    tpm = await openTpm({ tcti: lab.tcti, helperPath });
  });
  afterAll(async () => {
    await tpm?.close();
    await lab?.stop();
  });

  it('says which TPM it is', async () => {
    expect(await tpm.info()).toEqual({
      manufacturer: 'IBM',
      firmware: expect.stringMatching(/^\d+(\.\d+){3}$/),
      tcti: lab.tcti,
    });
  });

  it('reads the EK and its certificate, which the manufacturer CA signed for that very key', async () => {
    const ek = await tpm.endorsementKey();
    const modulus = rsaModulus(ek.publicArea);
    expect(modulus.length).toBe(256);
    expect(ek.certificateDer).toBeDefined();
    const cert = new X509Certificate(Buffer.from(ek.certificateDer as Uint8Array));
    expect(cert.verify(new X509Certificate(lab.manufacturerCaPem).publicKey)).toBe(true);
    const jwk = cert.publicKey.export({ format: 'jwk' });
    expect(Buffer.from(jwk.n as string, 'base64url')).toEqual(Buffer.from(modulus));
  });

  it('creates an attestation key and loads the same one back; its name is SHA-256 of its public area', async () => {
    ak = await tpm.createAttestationKey();
    expect(ak.handle).toBe(0x81004b50);
    expect(Buffer.from(ak.name)).toEqual(
      Buffer.concat([u16be(0x000b), createHash('sha256').update(ak.publicArea).digest()]),
    );
    eccPoint(ak.publicArea);
    const loaded = await tpm.attestationKey();
    expect(loaded).toEqual(ak);
  });

  it('quotes PCRs over a nonce, signed by the attestation key', async () => {
    const nonce = new Uint8Array(Buffer.from('a fresh nonce from the server 32'));
    const { attest, signature } = await tpm.quote(nonce);
    const r = new Reader(attest);
    expect(r.u32()).toBe(0xff544347); // TPM_GENERATED_VALUE
    expect(r.u16()).toBe(0x8018); // TPM_ST_ATTEST_QUOTE
    r.sized(); // qualifiedSigner
    expect(Buffer.from(r.sized())).toEqual(Buffer.from(nonce)); // extraData
    expect(verifyQuote(ak, attest, signature)).toBe(true);
    const tampered = new Uint8Array(attest);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(verifyQuote(ak, tampered, signature)).toBe(false);
  });

  it('refuses nonces outside 1..64 bytes before asking the TPM', async () => {
    await expectKeyportError(tpm.quote(new Uint8Array(0)), 'INVALID_ARGUMENT');
    await expectKeyportError(tpm.quote(new Uint8Array(65)), 'INVALID_ARGUMENT');
  });

  it('quotes many times in a row without running out of object slots', async () => {
    for (let i = 0; i < 25; i++) {
      const { attest, signature } = await tpm.quote(new Uint8Array([i + 1]));
      expect(verifyQuote(ak, attest, signature)).toBe(true);
    }
    // And the one-off ops that load and flush objects.
    for (let i = 0; i < 4; i++) await tpm.endorsementKey();
    const transient = execFileSync('tpm2_getcap', ['-T', lab.tcti, 'handles-transient'], {
      encoding: 'utf8',
    });
    expect(transient.trim()).toBe('');
  });

  it('activates a credential made for its EK and attestation key', async () => {
    const ek = await tpm.endorsementKey();
    const secret = new Uint8Array(Buffer.from('0123456789abcdef0123456789abcdef'));
    const made = makeCredential(ek.publicArea, ak.name, secret);
    expect(Buffer.from(await tpm.activateCredential(made.credential, made.secret))).toEqual(
      Buffer.from(secret),
    );
  });

  it('another TPM cannot activate that credential: PRECONDITION_FAILED with the TPM’s reason', async () => {
    const ek = await tpm.endorsementKey();
    const made = makeCredential(ek.publicArea, ak.name, new Uint8Array(32).fill(7));
    const other = await startLabTpm();
    const otherTpm = await openTpm({ tcti: other.tcti, helperPath });
    try {
      const otherEk = await otherTpm.endorsementKey();
      expect(Buffer.from(otherEk.publicArea)).not.toEqual(Buffer.from(ek.publicArea));
      expect(await otherTpm.attestationKey()).toBeUndefined();
      await otherTpm.createAttestationKey();
      await expectKeyportError(
        otherTpm.activateCredential(made.credential, made.secret),
        'PRECONDITION_FAILED',
        /ActivateCredential failed: .+\(0x[0-9a-f]+\)/,
      );
    } finally {
      await otherTpm.close();
      await other.stop();
    }
  });

  it('a helper killed mid-session is started again once, and the call works', async () => {
    const first = tpm.pid;
    expect(first).toBeGreaterThan(0);
    process.kill(first as number, 'SIGKILL');
    await expect.poll(() => tpm.pid).not.toBe(first);
    const { attest, signature } = await tpm.quote(new Uint8Array([42]));
    expect(verifyQuote(ak, attest, signature)).toBe(true);
    expect(tpm.pid).not.toBe(first);
  });

  it('a request pending when the helper dies is retried once on a new helper', async () => {
    const before = tpm.pid as number;
    const pending = tpm.rawQuoteBench(200);
    setTimeout(() => process.kill(before, 'SIGKILL'), 20);
    const result = await pending;
    expect(result.medianUs).toBeGreaterThan(0);
    expect(tpm.pid).not.toBe(before);
  });

  it('keeps the EK and the attestation key across a restart of the TPM on the same state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyport-tpm-keep-'));
    try {
      const first = await startLabTpm({ stateDir: dir });
      const a = await openTpm({ tcti: first.tcti, helperPath });
      const ek = await a.endorsementKey();
      const key = await a.createAttestationKey();
      await a.close();
      await first.stop();
      const second = await startLabTpm({ stateDir: dir });
      const b = await openTpm({ tcti: second.tcti, helperPath });
      try {
        expect(second.manufacturerCaPem).toBe(first.manufacturerCaPem);
        expect(await b.endorsementKey()).toEqual(ek);
        expect(await b.attestationKey()).toEqual(key);
      } finally {
        await b.close();
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('openTpm without a helper or a TPM', () => {
  it('a missing helper binary is UNAVAILABLE and says how to build it', async () => {
    await expectKeyportError(
      openTpm({ tcti: 'swtpm:host=127.0.0.1,port=9', helperPath: '/nonexistent/keyport-tpm-helper' }),
      'UNAVAILABLE',
      /\/nonexistent\/keyport-tpm-helper.*build\.mjs/,
    );
  });

  it('a TCTI with no TPM behind it is UNAVAILABLE: "No TPM at …"', async () => {
    const tcti = 'swtpm:host=127.0.0.1,port=9';
    await expectKeyportError(
      openTpm({ tcti, helperPath }),
      'UNAVAILABLE',
      /^No TPM at swtpm:host=127\.0\.0\.1,port=9/,
    );
    await expectKeyportError(
      openTpm({ tcti: 'device:/nonexistent/tpmrm0', helperPath }),
      'UNAVAILABLE',
      /No TPM at device:\/nonexistent\/tpmrm0/,
    );
  });

  it('a helper that keeps dying is UNAVAILABLE after one restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyport-badhelper-'));
    try {
      const bad = join(dir, 'helper');
      writeFileSync(bad, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
      await expectKeyportError(
        openTpm({ tcti: 'swtpm:host=127.0.0.1,port=9', helperPath: bad }),
        'UNAVAILABLE',
        /stopped twice/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a helper that answers nonsense is INTERNAL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyport-badhelper-'));
    try {
      const bad = join(dir, 'helper');
      writeFileSync(bad, '#!/bin/sh\nread line\necho "this is not json"\nsleep 5\n', { mode: 0o755 });
      await expectKeyportError(
        openTpm({ tcti: 'swtpm:host=127.0.0.1,port=9', helperPath: bad }),
        'INTERNAL',
        /nonsense/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
