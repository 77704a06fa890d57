import { describe, expect, it } from 'vitest';
import type { ContractError } from '../../../preload/contract';
import { attemptsLeft, describeError, fieldProblem, needsRelogin } from './errors';

const error = (
  code: ContractError['code'],
  details: ContractError['details'] = {},
  message = 'backend says',
): ContractError => ({
  code,
  message,
  details,
});

describe('describeError', () => {
  it('reads ACCESS_DENIED as a wrong user name or password', () => {
    expect(describeError(error('ACCESS_DENIED'))).toBe(
      'Wrong user name or password. Check both and try again.',
    );
  });

  it('names the local time a LOCKED account unlocks, on a 24 h clock', () => {
    const lockedUntilMs = new Date(2030, 2, 12, 14, 5).getTime();
    expect(describeError(error('LOCKED', { lockedUntilMs }))).toMatch(/^This account is locked until 14:05 /);
    const early = new Date(2030, 2, 12, 9, 7).getTime();
    expect(describeError(error('LOCKED', { lockedUntilMs: early }))).toContain('locked until 09:07');
  });

  it('reads LOCKED without a time as locked for now', () => {
    expect(describeError(error('LOCKED'))).toMatch(/^This account is locked\. Try again later/);
  });

  it('says to reset a key whose PIN is blocked', () => {
    const message = describeError(error('LOCKED', { securityKeyCode: 'PIN_BLOCKED' }));
    expect(message).toMatch(/PIN of this security key is blocked/);
    expect(message).toMatch(/Reset the key/);
  });

  it('says to remove and re-insert a key that refuses PINs until power-cycled (PIN_AUTH_BLOCKED)', () => {
    const message = describeError(error('LOCKED', { securityKeyCode: 'PIN_AUTH_BLOCKED' }));
    expect(message).toMatch(/Remove it, insert it again and try again/);
  });

  it('says a key without credentials is not registered (NOT_FOUND, NO_CREDENTIALS)', () => {
    expect(describeError(error('NOT_FOUND', { securityKeyCode: 'NO_CREDENTIALS' }))).toBe(
      'This security key is not registered for this account. Use a security key you registered.',
    );
  });

  it('keeps the message of any other NOT_FOUND', () => {
    expect(describeError(error('NOT_FOUND', {}, 'No device "old".'))).toBe('No device "old".');
  });

  it('counts the PIN attempts left after a wrong PIN (MFA_FAILED, PIN_INVALID)', () => {
    expect(describeError(error('MFA_FAILED', { securityKeyCode: 'PIN_INVALID', retriesLeft: 3 }))).toBe(
      'Wrong PIN. 3 attempts left before the key blocks its PIN.',
    );
    expect(describeError(error('MFA_FAILED', { securityKeyCode: 'PIN_INVALID', retriesLeft: 1 }))).toMatch(
      /1 attempt left/,
    );
    expect(describeError(error('MFA_FAILED', { securityKeyCode: 'PIN_INVALID' }))).toMatch(/^Wrong PIN\./);
  });

  it('reads CANCELLED as nothing changed', () => {
    expect(describeError(error('CANCELLED'))).toBe('Cancelled. Nothing was changed.');
  });

  it('reads UNAVAILABLE as an unreachable cluster: check the address and that it runs', () => {
    expect(describeError(error('UNAVAILABLE'))).toBe(
      'Cannot reach the cluster. Check the cluster address and that the cluster is running, then try again.',
    );
  });

  it('reads a window without the app behind it as such, not as an unreachable cluster', () => {
    const notConnected = describeError(error('UNAVAILABLE', { appConnection: 'NOT_CONNECTED' }));
    expect(notConnected).toMatch(/^This window is not connected to Keyport Connect/);
    expect(notConnected).toMatch(/open Keyport Connect again/);
    expect(notConnected).not.toMatch(/cluster/);
    const lost = describeError(error('UNAVAILABLE', { appConnection: 'LOST' }));
    expect(lost).toMatch(/^This window lost its connection to Keyport Connect/);
    expect(lost).not.toMatch(/cluster/);
  });

  it('reads an unavailable keychain as such, not as an unreachable cluster', () => {
    expect(describeError(error('UNAVAILABLE', { keystoreCode: 'KEYCHAIN_UNAVAILABLE' }))).toMatch(
      /OS keychain is not available/,
    );
  });

  it('warns of a possible attack when the CA changed (CA_PIN_MISMATCH)', () => {
    const message = describeError(error('CA_PIN_MISMATCH'));
    expect(message).toMatch(/changed since you trusted it/);
    expect(message).toMatch(/attack: do not continue/);
    expect(message).toMatch(/Ask your administrator/);
  });

  it('says to unlock the OS keychain (PRECONDITION_FAILED, KEYCHAIN_LOCKED)', () => {
    expect(describeError(error('PRECONDITION_FAILED', { keystoreCode: 'KEYCHAIN_LOCKED' }))).toMatch(
      /^The OS keychain is locked\. Unlock it/,
    );
  });

  it('says to sign in again for UNAUTHENTICATED, CERTIFICATE_EXPIRED and anything resolvable by relogin', () => {
    const again = 'Your session has ended. Sign in again to continue.';
    expect(describeError(error('UNAUTHENTICATED'))).toBe(again);
    expect(describeError(error('CERTIFICATE_EXPIRED'))).toBe(again);
    expect(describeError(error('EXPIRED', { resolvableByRelogin: true }))).toBe(again);
    expect(needsRelogin(error('EXPIRED', { resolvableByRelogin: true }))).toBe(true);
    expect(needsRelogin(error('ACCESS_DENIED'))).toBe(false);
  });

  it('names the field of an INVALID_ARGUMENT', () => {
    expect(
      describeError(error('INVALID_ARGUMENT', { fieldPath: 'address' }, 'A cluster address is HOST:PORT.')),
    ).toBe('Cluster address: A cluster address is HOST:PORT.');
    expect(describeError(error('INVALID_ARGUMENT', { fieldPath: 'ttl' }, 'Too long.'))).toBe(
      'ttl: Too long.',
    );
    expect(describeError(error('INVALID_ARGUMENT', {}, 'Bad.'))).toBe('Bad.');
  });

  it("falls back to the backend's message", () => {
    expect(describeError(error('ALREADY_EXISTS', {}, 'A device named "yubikey" exists.'))).toBe(
      'A device named "yubikey" exists.',
    );
    expect(describeError(error('MFA_FAILED', {}, 'The key refused.'))).toBe('The key refused.');
    expect(describeError(error('PRECONDITION_FAILED', {}, 'Not yet.'))).toBe('Not yet.');
  });
});

describe('fieldProblem', () => {
  it('is an INVALID_ARGUMENT for one field, read with the field named', () => {
    const problem = fieldProblem('address', 'Give the cluster address (HOST:PORT).');
    expect(problem).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'Give the cluster address (HOST:PORT).',
      details: { fieldPath: 'address' },
    });
    expect(describeError(problem)).toBe('Cluster address: Give the cluster address (HOST:PORT).');
  });
});

describe('attemptsLeft', () => {
  it('counts one attempt in the singular and others in the plural', () => {
    expect(attemptsLeft(1)).toBe('1 attempt left');
    expect(attemptsLeft(3)).toBe('3 attempts left');
    expect(attemptsLeft(0)).toBe('0 attempts left');
  });
});
