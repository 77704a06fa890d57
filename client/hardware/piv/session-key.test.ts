import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isKeyportMarker, markerCertificate } from './marker';
import { choosePivSlot, generatePolicyFor, personsOwnKey, planSlot, policyMetBy } from './session-key';
import type { Metadata } from './commands';
import { FIXTURE_CERT_DER } from './test-bytes.test-support';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;

function keyMetadata(
  publicKey = p256(),
  policy: Metadata['policy'] = { pin: 'never', touch: 'cached' },
): Metadata {
  return { algorithm: 0x11, policy, origin: 'generated', publicKey };
}

describe('choosePivSlot', () => {
  it('takes --piv-slot, then KEYPORT_PIV_SLOT, then the cluster, then the policy default', () => {
    expect(choosePivSlot('hardware_key_touch', { flag: '9a', env: '9d', cluster: '9e' })).toEqual({
      slot: 0x9a,
      from: 'flag',
    });
    expect(choosePivSlot('hardware_key_touch', { env: '9d', cluster: '9e' })).toEqual({
      slot: 0x9d,
      from: 'env',
    });
    expect(choosePivSlot('hardware_key_touch', { cluster: '9e' })).toEqual({ slot: 0x9e, from: 'cluster' });
    expect(choosePivSlot('hardware_key', {}).slot).toBe(0x9a);
    expect(choosePivSlot('hardware_key_touch', {}).slot).toBe(0x9c);
    expect(choosePivSlot('hardware_key_touch_and_pin', {}).slot).toBe(0x9d);
    expect(choosePivSlot('hardware_key_pin', {}).slot).toBe(0x9e);
  });

  it('refuses a slot that is not one of the four', () => {
    expect(() => choosePivSlot('hardware_key', { flag: '9b' })).toThrow(/use 9a, 9c, 9d or 9e/);
  });
});

describe('key policies', () => {
  it('generates PIN once and a cached touch only where the policy asks', () => {
    expect(generatePolicyFor('hardware_key')).toEqual({ pin: 'never', touch: 'never' });
    expect(generatePolicyFor('hardware_key_touch')).toEqual({ pin: 'never', touch: 'cached' });
    expect(generatePolicyFor('hardware_key_pin')).toEqual({ pin: 'once', touch: 'never' });
    expect(generatePolicyFor('hardware_key_touch_and_pin')).toEqual({ pin: 'once', touch: 'cached' });
  });

  it("reads a key's policies as the private-key policy they meet, the slot's default PIN policy included", () => {
    expect(policyMetBy(0x9a, { pin: 'never', touch: 'never' })).toBe('hardware_key');
    expect(policyMetBy(0x9a, { pin: 'always', touch: 'always' })).toBe('hardware_key_touch_and_pin');
    expect(policyMetBy(0x9c, { pin: 'default', touch: 'default' })).toBe('hardware_key_pin');
    expect(policyMetBy(0x9e, { pin: 'default', touch: 'cached' })).toBe('hardware_key_touch');
  });
});

describe('planSlot', () => {
  it('generates in an empty slot', () => {
    expect(planSlot(0x9c, {}, 'hardware_key_touch', false)).toEqual({
      action: 'generate',
      replacing: 'nothing',
    });
  });

  it("reuses Keyport's key when its policies fit, and replaces it when they do not", () => {
    const publicKey = p256();
    const certificate = new X509Certificate(markerCertificate(publicKey));
    const touch = keyMetadata(publicKey, { pin: 'never', touch: 'cached' });
    expect(planSlot(0x9c, { metadata: touch, certificate }, 'hardware_key_touch', false)).toMatchObject({
      action: 'reuse',
      policy: { pin: 'never', touch: 'cached' },
    });
    // A stricter key meets a weaker policy.
    expect(planSlot(0x9c, { metadata: touch, certificate }, 'hardware_key', false).action).toBe('reuse');
    expect(planSlot(0x9c, { metadata: touch, certificate }, 'hardware_key_touch_and_pin', false)).toEqual({
      action: 'generate',
      replacing: 'keyport',
    });
    const imported = { ...touch, origin: 'imported' as const };
    expect(planSlot(0x9c, { metadata: imported, certificate }, 'hardware_key', false).action).toBe(
      'generate',
    );
  });

  it("never replaces another application's key or certificate without overwrite", () => {
    const metadata = keyMetadata();
    const foreign = new X509Certificate(FIXTURE_CERT_DER);
    // Keyport's subject on a certificate for another key is not Keyport's key.
    const stale = new X509Certificate(markerCertificate(p256()));
    for (const contents of [
      { metadata },
      { metadata, certificate: foreign },
      { metadata, certificate: stale },
      { certificate: foreign },
    ]) {
      expect(planSlot(0x9a, contents, 'hardware_key', false)).toEqual({ action: 'refuse', why: 'foreign' });
      expect(planSlot(0x9a, contents, 'hardware_key', true)).toEqual({
        action: 'generate',
        replacing: 'foreign',
      });
    }
  });
});

describe("personsOwnKey (the seed's custom key)", () => {
  it('is a generated P-256 key without a certificate, fitting or not; anything else is not', () => {
    const metadata = keyMetadata();
    expect(personsOwnKey(0x9c, { metadata }, 'hardware_key_touch')).toEqual({
      publicKey: metadata.publicKey,
      policy: metadata.policy,
      fits: true,
    });
    expect(personsOwnKey(0x9c, { metadata }, 'hardware_key_touch_and_pin')?.fits).toBe(false);
    const certificate = new X509Certificate(FIXTURE_CERT_DER);
    expect(personsOwnKey(0x9c, { metadata, certificate }, 'hardware_key')).toBeUndefined();
    expect(personsOwnKey(0x9c, {}, 'hardware_key')).toBeUndefined();
    expect(
      personsOwnKey(0x9c, { metadata: { ...metadata, origin: 'imported' } }, 'hardware_key'),
    ).toBeUndefined();
    expect(
      personsOwnKey(0x9c, { metadata: { ...metadata, algorithm: 0x14 } }, 'hardware_key'),
    ).toBeUndefined();
  });
});

describe('the marker certificate', () => {
  it("is an X.509 certificate for the slot's key with Keyport's subject, and marks only that key", () => {
    const publicKey = p256();
    const der = markerCertificate(publicKey);
    const certificate = new X509Certificate(der);
    expect(certificate.subject).toBe('O=Keyport\nOU=keyport-session-key\nCN=Keyport session key');
    expect(certificate.issuer).toBe(certificate.subject);
    expect(certificate.validTo).toContain('9999');
    expect(certificate.publicKey.equals(publicKey)).toBe(true);
    expect(isKeyportMarker(certificate, publicKey)).toBe(true);
    expect(isKeyportMarker(certificate, p256())).toBe(false);
    expect(isKeyportMarker(undefined, publicKey)).toBe(false);
    expect(isKeyportMarker(new X509Certificate(FIXTURE_CERT_DER), publicKey)).toBe(false);
  });
});
