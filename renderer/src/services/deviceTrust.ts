// Device trust in words: this device's state, and what to do next after a failed enrollment. The codes
// and field paths are the cluster's (auth/services/device-service.ts, auth/device-trust/ceremony.ts).
import { createContext } from 'react';
import type { ContractError, DeviceTrustView } from '../../../preload/contract';
import { describeError } from './errors';

/** Opens the enrollment of this device (the Account screen's "This device"), when someone is signed in. */
export const OpenEnrollmentContext = createContext<(() => void) | null>(null);

export function deviceStateLabel(status: DeviceTrustView): string {
  if (status.trustedInSession) return 'Trusted in this session';
  switch (status.state) {
    case 'not_registered':
      return 'Not registered';
    case 'registered':
      return 'Registered, not enrolled';
    case 'enrolled':
      return 'Enrolled';
    case 'other_tpm':
      return 'Enrolled with another TPM';
    case 'locked':
      return 'Locked by an admin';
  }
}

export function deviceTrustModeLabel(mode: DeviceTrustView['mode']): string {
  return { off: 'Off', optional: 'Optional', required: 'Required' }[mode];
}

/** base64url, as auth/tokens.ts makes them; the backend checks again. */
const ENROLL_TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/** What is wrong with a pasted token, or null when it can be sent. */
export function enrollTokenProblem(token: string): string | null {
  if (token.length === 0) return 'Paste the enrollment token your admin gave you.';
  if (!ENROLL_TOKEN.test(token)) {
    return 'This is not an enrollment token: it has only letters, digits, "-" and "_". Paste it again.';
  }
  return null;
}

export function askForToken(assetTag: string): string {
  return assetTag
    ? `Ask an admin to register this device (asset tag ${assetTag}) and give you an enrollment token.`
    : 'Ask an admin to register this device and give you an enrollment token.';
}

/** A failed enrollment: what happened and what to do next. */
export function describeEnrollError(error: ContractError, status: DeviceTrustView | null): string {
  const field = error.details?.fieldPath ?? '';
  const assetTag = status?.assetTag ?? '';
  switch (error.code) {
    case 'ACCESS_DENIED':
      if (field === 'token') return askForToken(assetTag);
      // The TPM did not activate the credential sealed to the keys it sent, or its quote did not verify.
      if (field.startsWith('response.')) {
        return `This TPM is not the one enrolled for this device (asset tag ${assetTag || 'unknown'}), or it could not prove its keys. Ask an admin to check this device's enrollment.`;
      }
      return error.message;
    case 'EXPIRED':
      if (field === 'token') return 'This enrollment token has expired: ask for a new one.';
      return error.message;
    case 'NOT_FOUND':
      return askForToken(assetTag);
    case 'ALREADY_EXISTS':
      return `This device is already enrolled. ${error.message}`;
    case 'PRECONDITION_FAILED':
    case 'UNAVAILABLE':
      if (error.details?.appConnection || error.details?.keystoreCode) return describeError(error);
      return status?.tpmProblem ?? error.message;
    case 'INVALID_ARGUMENT':
      if (field === 'token') return `Enrollment token: ${error.message}`;
      return describeError(error);
    default:
      return describeError(error);
  }
}
