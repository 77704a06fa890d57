// The terminal's side of MFA for admin actions: how a write's touch is asked ("Tap any security key"), for
// keyport admin and for a device's self-enrollment, which registers a device.
import type { MfaPrompts } from '../client/ceremonies/mfa';
import { KeyportError } from '../proto/errors';
import type { Prompter } from './prompts';
import { securityKeyPrompts } from './security-key-prompts';

/** A security key, never an OTP code. */
export function adminMfaPrompts(prompter: Prompter): MfaPrompts {
  return {
    otpCode: () => Promise.reject(new KeyportError('MFA_REQUIRED', 'Admin actions take a security key.')),
    securityKey: securityKeyPrompts(prompter),
  };
}
