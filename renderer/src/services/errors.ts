// One place that turns a contract error into a sentence for the person: what happened and what to do
// next. Codes and details are the contract's (preload/contract.ts); the backend's own message is the
// fallback, as it is already written for people.
import type { ContractError } from '../../../preload/contract';
import { formatClock } from './time';

const fieldLabels: Record<string, string> = {
  address: 'Cluster address',
  caPin: 'CA pin',
  user: 'User',
  password: 'Password',
  name: 'Key name',
  'value.name': 'Key name',
  'value.pin': 'PIN',
  'value.code': 'Code',
};

/** The error clears after signing in again (an expired or missing session). */
export function needsRelogin(error: ContractError): boolean {
  return (
    error.code === 'UNAUTHENTICATED' ||
    error.code === 'CERTIFICATE_EXPIRED' ||
    error.details?.resolvableByRelogin === true
  );
}

/** "1 attempt left", "3 attempts left": a security key's PIN retries. */
export function attemptsLeft(retries: number): string {
  return retries === 1 ? '1 attempt left' : `${retries} attempts left`;
}

/** A problem with one field found before calling the backend, shaped as the backend reports its own. */
export function fieldProblem(fieldPath: string, message: string): ContractError {
  return { code: 'INVALID_ARGUMENT', message, details: { fieldPath } };
}

export function describeError(error: ContractError): string {
  const details = error.details ?? {};
  // A key's PIN lock is the key's state, whatever code carried it.
  if (details.securityKeyCode === 'PIN_BLOCKED') {
    return 'The PIN of this security key is blocked after too many wrong PINs. Reset the key (this erases its credentials) or use another registered key.';
  }
  if (details.securityKeyCode === 'PIN_AUTH_BLOCKED') {
    return 'The security key is refusing PINs after several wrong ones in a row. Remove it, insert it again and try again.';
  }
  // The PIV card's own state and answers: its messages (client/hardware/piv) say what to do next.
  if (details.pivCode === 'SECURITY_STATUS_NOT_SATISFIED') {
    return 'Your YubiKey was not touched (or its PIN not entered) in time, so it did not sign. Nothing was changed: try again and touch the key while it blinks.';
  }
  if (details.pivCode) return error.message;
  if (error.code === 'PRIVATE_KEY_POLICY_NOT_MET') return error.message;
  if (needsRelogin(error)) return 'Your session has ended. Sign in again to continue.';

  switch (error.code) {
    case 'ACCESS_DENIED':
      return 'Wrong user name or password. Check both and try again.';
    case 'LOCKED':
      if (details.lockedUntilMs !== undefined && details.lockedUntilMs > 0) {
        return `This account is locked until ${formatClock(details.lockedUntilMs)} after too many failed sign-ins. Try again then, or ask your administrator to unlock it.`;
      }
      return 'This account is locked. Try again later, or ask your administrator to unlock it.';
    case 'NOT_FOUND':
      if (details.securityKeyCode === 'NO_CREDENTIALS') {
        return 'This security key is not registered for this account. Use a security key you registered.';
      }
      return error.message;
    case 'MFA_FAILED':
      if (details.securityKeyCode === 'PIN_INVALID') {
        return details.retriesLeft !== undefined
          ? `Wrong PIN. ${attemptsLeft(details.retriesLeft)} before the key blocks its PIN.`
          : 'Wrong PIN. Check the PIN of your security key and try again.';
      }
      return error.message;
    case 'CANCELLED':
      return 'Cancelled. Nothing was changed.';
    case 'DEVICE_TRUST_REQUIRED':
      return 'This needs a trusted device. Enroll this device, then sign in again to get a trusted session.';
    case 'UNAVAILABLE':
      // The window has no app behind it: nothing is wrong with any cluster.
      if (details.appConnection === 'NOT_CONNECTED') {
        return 'This window is not connected to Keyport Connect: the link that opened it works only once, for 2 minutes. Close this window and open Keyport Connect again from its launcher.';
      }
      if (details.appConnection === 'LOST') {
        return "This window lost its connection to Keyport Connect: the app stopped or ended this window's session. Close this window and open Keyport Connect again from its launcher.";
      }
      if (details.keystoreCode === 'KEYCHAIN_UNAVAILABLE') {
        return 'The OS keychain is not available. Make sure your desktop keyring is running, then try again.';
      }
      return 'Cannot reach the cluster. Check the cluster address and that the cluster is running, then try again.';
    case 'CA_PIN_MISMATCH':
      return "The cluster's certificate authority changed since you trusted it. This can be an attack: do not continue. Ask your administrator whether the CA was replaced.";
    case 'PRECONDITION_FAILED':
      if (details.keystoreCode === 'KEYCHAIN_LOCKED') {
        return 'The OS keychain is locked. Unlock it (for example by unlocking your desktop session), then try again.';
      }
      return error.message;
    case 'INVALID_ARGUMENT': {
      const field = details.fieldPath;
      if (!field) return error.message;
      return `${fieldLabels[field] ?? field}: ${error.message}`;
    }
    default:
      return error.message;
  }
}
