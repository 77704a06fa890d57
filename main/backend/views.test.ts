import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../proto/errors';
import { Ctap2Error } from '../../client/hardware/fido/ctap2';
import { CtaphidError } from '../../client/hardware/fido/ctaphid';
import { KeyStoreError } from '../../client/keystore';
import type { TrustedCluster } from '../../client/profiles';
import { clusterView, toContractError } from './views';

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
