import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../proto/errors';
import { Ctap2Error } from '../../client/hardware/fido/ctap2';
import { CtaphidError } from '../../client/hardware/fido/ctaphid';
import { KeyStoreError } from '../../client/keystore';
import { PivError } from '../../client/hardware/piv/errors';
import type { Profile, TrustedCluster } from '../../client/profiles';
import { clusterView, profileView, toContractError } from './views';

describe('clusterView', () => {
  it('shows a cluster of several replicas as one: its canonical address, no replica list', () => {
    const single: TrustedCluster = {
      address: '10.0.0.1:3025',
      name: 'prod',
      publicAddr: 'auth.example.com:3025',
      caPin: `sha256:${'a'.repeat(64)}`,
      caPem: 'pem',
      trustedAtMs: 1,
      secondFactors: ['otp'],
    };
    const replicated: TrustedCluster = {
      ...single,
      replicas: ['10.0.0.1:3025', '10.0.0.2:3025'],
      lastReplica: '10.0.0.2:3025',
    };
    expect(clusterView(replicated)).toEqual(clusterView(single));
    expect(clusterView(replicated).address).toBe('10.0.0.1:3025');
    expect(JSON.stringify(clusterView(replicated))).not.toContain('10.0.0.2');
  });
});

describe('toContractError', () => {
  it('keeps a KeyportError code, message and fields', () => {
    const error = new KeyportError('LOCKED', 'Locked until 10:00.', { lockedUntilMs: 5 });
    expect(toContractError(error)).toEqual({
      code: 'LOCKED',
      message: 'Locked until 10:00.',
      details: { lockedUntilMs: 5 },
    });
  });

  it('maps keystore and security-key errors to contract codes, naming the original code', () => {
    expect(toContractError(new KeyStoreError('KEYCHAIN_LOCKED', 'Unlock your keychain.'))).toMatchObject({
      code: 'PRECONDITION_FAILED',
      details: { keystoreCode: 'KEYCHAIN_LOCKED' },
    });
    expect(toContractError(new Ctap2Error('PIN_INVALID', undefined, 0x31, 4))).toMatchObject({
      code: 'MFA_FAILED',
      details: { securityKeyCode: 'PIN_INVALID', retriesLeft: 4 },
    });
    expect(toContractError(new Ctap2Error('PIN_BLOCKED'))).toMatchObject({ code: 'LOCKED' });
    expect(toContractError(new CtaphidError('TIMEOUT', 'No key answered.'))).toMatchObject({
      code: 'EXPIRED',
      details: { securityKeyCode: 'TIMEOUT' },
    });
  });

  it('does not pass an unknown error message through', () => {
    const error = toContractError(new Error('-----BEGIN PRIVATE KEY----- oops'));
    expect(error.code).toBe('INTERNAL');
    expect(JSON.stringify(error)).not.toContain('PRIVATE KEY');
  });
});

describe('hardware keys in views', () => {
  const base: Profile = {
    address: '127.0.0.1:3025',
    cluster: 'lab',
    user: 'ivy',
    roles: ['access'],
    logins: ['root'],
    mfaVerified: false,
    validAfterMs: 1,
    expiresMs: 2,
    keystore: 'keychain',
    keyId: 'piv/16493529/9c',
    tlsCertPem: '-----BEGIN CERTIFICATE-----',
    sshCertificate: 'ecdsa-sha2-nistp256-cert-v01@openssh.com AAAA',
  };

  it("shows a card session's slot and policies, and nothing of its certificate or key id", () => {
    const view = profileView({
      ...base,
      hardwareKey: {
        slot: '9c',
        serial: 16493529,
        policy: 'hardware_key_touch',
        pinPolicy: 'never',
        touchPolicy: 'cached',
      },
    });
    expect(view.sessionKey).toEqual({
      kind: 'piv',
      slot: '9c',
      serial: 16493529,
      policy: 'hardware_key_touch',
      pinPolicy: 'never',
      touchPolicy: 'cached',
    });
    expect(JSON.stringify(view)).not.toMatch(/BEGIN CERTIFICATE|piv\/16493529|AAAA/);
    expect(profileView(base).sessionKey).toEqual({ kind: 'keychain' });
  });

  it("keeps a PIV error's reason and attempts left", () => {
    expect(
      toContractError(
        new PivError('PIN_INCORRECT', 'Wrong PIV PIN (2 attempts left).', { sw: 0x63c2, retriesLeft: 2 }),
      ),
    ).toEqual({
      code: 'MFA_FAILED',
      message: 'Wrong PIV PIN (2 attempts left).',
      details: { pivCode: 'PIN_INCORRECT', retriesLeft: 2 },
    });
    expect(toContractError(new PivError('SECURITY_STATUS_NOT_SATISFIED', 'not touched'))).toMatchObject({
      code: 'ACCESS_DENIED',
      details: { pivCode: 'SECURITY_STATUS_NOT_SATISFIED' },
    });
  });
});
