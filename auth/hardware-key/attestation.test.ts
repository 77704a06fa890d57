import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { attestSlotKey, createCardAttestation } from '../../lab/piv/attestation';
import type { CardAttestation, StoredAuthority } from '../../lab/piv/attestation';
import { PIN_POLICY, TOUCH_POLICY } from '../../lab/piv/policy';
import { KeyportError } from '../../proto/errors';
import type { PrivateKeyPolicy } from '../../proto/resources/private-key-policy';
import { ECDSA_P256_SHA256, x509 } from '../ca/x509-library';
import {
  attestedPolicy,
  HardwareKeyFormatError,
  HardwareKeyRefusal,
  parsePivAttestation,
  verifyPivAttestation,
} from './attestation';
import type { PivAttestationInput } from './attestation';

const FACTS = { serial: 12345678, firmware: [5, 7, 1] as const, formFactor: 1 };
const der = (pem: string) => new Uint8Array(new X509Certificate(pem).raw);

let card: CardAttestation;
beforeAll(async () => {
  card = await createCardAttestation(FACTS.serial);
});

function sessionKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

async function attestation(
  key: KeyObject,
  policies: { pin: number; touch: number },
  device: StoredAuthority = card.device,
): Promise<PivAttestationInput> {
  return {
    slotCertificate: await attestSlotKey(device, FACTS, {
      slot: 0x9c,
      publicKey: createPublicKey(key),
      pinPolicy: policies.pin,
      touchPolicy: policies.touch,
    }),
    attestationCertificate: der(device.certPem),
  };
}

function verify(
  input: PivAttestationInput,
  key: KeyObject,
  required: PrivateKeyPolicy,
  extraRoots: string[] = [card.root.certPem],
  now = new Date(),
) {
  return verifyPivAttestation(parsePivAttestation(input), { sessionKey: key, required, extraRoots, now });
}

function thrown(run: () => unknown): KeyportError {
  try {
    run();
  } catch (error) {
    if (error instanceof KeyportError) return error;
    throw error;
  }
  throw new Error('expected a KeyportError');
}

/** An f9 certificate under the lab root with the given validity and basic constraints. */
async function deviceAuthority(options: {
  notBefore: Date;
  notAfter: Date;
  ca: boolean | undefined;
}): Promise<StoredAuthority> {
  const rootKey = createPrivateKey(card.root.keyPem);
  const deviceKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const subtle = x509.cryptoProvider.get().subtle;
  const signingKey = await subtle.importKey(
    'pkcs8',
    rootKey.export({ type: 'pkcs8', format: 'der' }),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: '0a0b0c',
    subject: 'CN=Keyport Lab PIV Attestation test',
    issuer: new x509.X509Certificate(card.root.certPem).subjectName,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: new Uint8Array(createPublicKey(deviceKey).export({ type: 'spki', format: 'der' })),
    signingKey,
    signingAlgorithm: ECDSA_P256_SHA256,
    extensions:
      options.ca === undefined ? [] : [new x509.BasicConstraintsExtension(options.ca, undefined, true)],
  });
  return {
    keyPem: deviceKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: certificate.toString('pem'),
  };
}

describe('PIV attestation: parsing', () => {
  it("reads Yubico's extensions: firmware, serial, PIN and touch policy, form factor, slot", async () => {
    const key = sessionKey();
    const parsed = parsePivAttestation(
      await attestation(key, { pin: PIN_POLICY.ONCE, touch: TOUCH_POLICY.CACHED }),
    );
    expect(parsed.facts).toEqual({
      firmware: '5.7.1',
      serial: 12345678,
      pinPolicy: 'once',
      touchPolicy: 'cached',
      formFactor: 1,
      slot: '9c',
    });
    expect(parsed.attestedSpki).toEqual(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  });

  it('refuses malformed DER with INVALID_ARGUMENT naming the field, and nothing else (fuzzed)', async () => {
    const good = await attestation(sessionKey(), { pin: 2, touch: 2 });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          // Mutations of a real attestation certificate: flipped bytes, truncations.
          fc
            .tuple(fc.nat({ max: good.slotCertificate.length - 1 }), fc.integer({ min: 1, max: 255 }))
            .map(([at, xor]) => {
              const copy = Uint8Array.from(good.slotCertificate);
              copy[at] = copy[at]! ^ xor;
              return copy;
            }),
          fc.nat({ max: good.slotCertificate.length - 1 }).map((n) => good.slotCertificate.slice(0, n)),
        ),
        fc.boolean(),
        (bytes, asF9) => {
          const input = asF9
            ? { ...good, attestationCertificate: bytes }
            : { ...good, slotCertificate: bytes };
          try {
            const parsed = parsePivAttestation(input);
            // A mutation that still parses must not verify unless it changed nothing that is signed.
            verifyPivAttestation(parsed, {
              sessionKey: sessionKey(),
              required: 'hardware_key',
              extraRoots: [card.root.certPem],
              now: new Date(),
            });
            expect.unreachable('a changed certificate verified for another key');
          } catch (error) {
            expect(error).toBeInstanceOf(KeyportError);
            if (error instanceof HardwareKeyFormatError) {
              expect(error.code).toBe('INVALID_ARGUMENT');
              expect(error.fields.fieldPath).toMatch(/^hardware_key_attestation\./);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses more than four intermediates', async () => {
    const good = await attestation(sessionKey(), { pin: 2, touch: 2 });
    const error = thrown(() =>
      parsePivAttestation({ ...good, intermediates: Array(5).fill(good.attestationCertificate) }),
    );
    expect(error.fields.fieldPath).toBe('hardware_key_attestation.intermediates');
  });

  it('maps policies: touch cached or always is touch, PIN once or always is a PIN, never is neither', () => {
    const policy = (pinPolicy: 'never' | 'once' | 'always', touchPolicy: 'never' | 'always' | 'cached') =>
      attestedPolicy({ pinPolicy, touchPolicy });
    expect(policy('never', 'never')).toBe('hardware_key');
    expect(policy('never', 'cached')).toBe('hardware_key_touch');
    expect(policy('never', 'always')).toBe('hardware_key_touch');
    expect(policy('once', 'never')).toBe('hardware_key_pin');
    expect(policy('always', 'always')).toBe('hardware_key_touch_and_pin');
    expect(attestedPolicy({ pinPolicy: 'unknown', touchPolicy: 'unknown' })).toBe('hardware_key');
  });
});

describe('PIV attestation: verification', () => {
  it('accepts a lab card attestation of the session key under the lab root, meeting the policy', async () => {
    const key = sessionKey();
    const verified = verify(
      await attestation(key, { pin: PIN_POLICY.ONCE, touch: TOUCH_POLICY.CACHED }),
      key,
      'hardware_key_touch_and_pin',
    );
    expect(verified.policy).toBe('hardware_key_touch_and_pin');
    expect(verified.root).toBe('C=ZZ\nO=Keyport Lab\nCN=Keyport Lab PIV Attestation Root');
    expect(verified.facts.serial).toBe(12345678);
  });

  it('refuses an attestation under a root the cluster does not trust', async () => {
    const key = sessionKey();
    const input = await attestation(key, { pin: 2, touch: 2 });
    const refusal = thrown(() => verify(input, key, 'hardware_key', []));
    expect(refusal).toBeInstanceOf(HardwareKeyRefusal);
    expect((refusal as HardwareKeyRefusal).reason).toBe('untrusted-chain');
    expect(refusal.code).toBe('ACCESS_DENIED');
    // Another card's root is no better.
    const other = await createCardAttestation(1);
    expect(
      (thrown(() => verify(input, key, 'hardware_key', [other.root.certPem])) as HardwareKeyRefusal).reason,
    ).toBe('untrusted-chain');
  });

  it('refuses an attestation of another key than the session key', async () => {
    const input = await attestation(sessionKey(), { pin: 2, touch: 2 });
    const refusal = thrown(() => verify(input, sessionKey(), 'hardware_key'));
    expect((refusal as HardwareKeyRefusal).reason).toBe('key-mismatch');
  });

  it('refuses a slot certificate that the f9 certificate sent with it did not sign', async () => {
    const key = sessionKey();
    const input = await attestation(key, { pin: 2, touch: 2 });
    const other = await createCardAttestation(2);
    const refusal = thrown(() =>
      verify({ ...input, attestationCertificate: der(other.device.certPem) }, key, 'hardware_key', [
        card.root.certPem,
        other.root.certPem,
      ]),
    );
    expect((refusal as HardwareKeyRefusal).reason).toBe('untrusted-chain');
  });

  it.each([
    ['hardware_key_touch', PIN_POLICY.ALWAYS, TOUCH_POLICY.NEVER],
    ['hardware_key_pin', PIN_POLICY.NEVER, TOUCH_POLICY.ALWAYS],
    ['hardware_key_touch_and_pin', PIN_POLICY.ONCE, TOUCH_POLICY.NEVER],
  ] as const)(
    'refuses %s with PIN policy %i and touch policy %i, naming the policy',
    async (required, pin, touch) => {
      const key = sessionKey();
      const input = await attestation(key, { pin, touch });
      const refusal = thrown(() => verify(input, key, required));
      expect(refusal.code).toBe('PRIVATE_KEY_POLICY_NOT_MET');
      expect(refusal.message).toContain(`Unmet private key policy "${required}".`);
      expect(refusal.fields.privateKeyPolicy).toBe(required);
    },
  );

  it('refuses an expired f9 certificate, and one that says it is not a CA', async () => {
    const key = sessionKey();
    const day = 24 * 3600_000;
    const expired = await deviceAuthority({
      notBefore: new Date(Date.now() - 10 * day),
      notAfter: new Date(Date.now() - day),
      ca: true,
    });
    const expiredInput = await attestation(key, { pin: 2, touch: 2 }, expired);
    const f9Expired = thrown(() => verify(expiredInput, key, 'hardware_key'));
    expect((f9Expired as HardwareKeyRefusal).reason).toBe('expired');

    const notCa = await deviceAuthority({
      notBefore: new Date(Date.now() - day),
      notAfter: new Date(Date.now() + day),
      ca: false,
    });
    const input = await attestation(key, { pin: 2, touch: 2 }, notCa);
    expect((thrown(() => verify(input, key, 'hardware_key')) as HardwareKeyRefusal).reason).toBe('not-a-ca');

    // YubiKey 4 f9 certificates carry no basic constraints at all: accepted.
    const legacy = await deviceAuthority({
      notBefore: new Date(Date.now() - day),
      notAfter: new Date(Date.now() + day),
      ca: undefined,
    });
    expect(verify(await attestation(key, { pin: 2, touch: 2 }, legacy), key, 'hardware_key').policy).toBe(
      'hardware_key_touch_and_pin',
    );
  });

  it('refuses an expired intermediate between f9 and the root', async () => {
    const key = sessionKey();
    const day = 24 * 3600_000;
    const middle = await deviceAuthority({
      notBefore: new Date(Date.now() - 10 * day),
      notAfter: new Date(Date.now() - day),
      ca: true,
    });
    const f9 = await issueUnder(middle, 'CN=f9 under an expired intermediate');
    const input = await attestation(key, { pin: 2, touch: 2 }, f9);
    const refusal = thrown(() =>
      verify({ ...input, intermediates: [der(middle.certPem)] }, key, 'hardware_key'),
    );
    expect((refusal as HardwareKeyRefusal).reason).toBe('expired');
    // Without it, there is no path at all.
    expect((thrown(() => verify(input, key, 'hardware_key')) as HardwareKeyRefusal).reason).toBe(
      'untrusted-chain',
    );
  });

  it('refuses an intermediate that is not a CA', async () => {
    const key = sessionKey();
    const day = 24 * 3600_000;
    // The lab f9 signed by a non-CA "intermediate" that the root issued.
    const middle = await deviceAuthority({
      notBefore: new Date(Date.now() - day),
      notAfter: new Date(Date.now() + day),
      ca: false,
    });
    const f9 = await issueUnder(middle, 'CN=f9 under a non-CA');
    const input = await attestation(key, { pin: 2, touch: 2 }, f9);
    const refusal = thrown(() =>
      verify({ ...input, intermediates: [der(middle.certPem)] }, key, 'hardware_key'),
    );
    expect((refusal as HardwareKeyRefusal).reason).toBe('not-a-ca');
  });
});

/** A CA certificate for a new key, issued by `issuer`, valid now. */
async function issueUnder(issuer: StoredAuthority, subject: string): Promise<StoredAuthority> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const signingKey = await x509.cryptoProvider
    .get()
    .subtle.importKey(
      'pkcs8',
      createPrivateKey(issuer.keyPem).export({ type: 'pkcs8', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    );
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: '0d0e0f',
    subject,
    issuer: new x509.X509Certificate(issuer.certPem).subjectName,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 3600_000),
    publicKey: new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' })),
    signingKey,
    signingAlgorithm: ECDSA_P256_SHA256,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
  });
  return {
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: certificate.toString('pem'),
  };
}
