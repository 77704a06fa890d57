// Signup with a one-time token: StartSignup shows what the first device needs (a TOTP secret here),
// CompleteSignup spends the token, sets the password and registers the device, all or nothing.
import { KeyportError } from '../../proto/errors';
import { MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import type { TOTPRegisterChallenge } from '../../proto/gen/keyport/v1/mfa';
import type { ClusterAddress } from '../cluster-trust';
import type { ProfileStore } from '../profiles';
import { connectTrusted, ensureTrustedCluster } from '../session';
import type { TrustPrompt } from '../session';

export interface SignupPrompts extends TrustPrompt {
  newPassword(user: string): Promise<string>;
  /** Show the otpauth:// URI and secret once; the person adds them to an authenticator app. */
  showTotpEnrollment(enrollment: TOTPRegisterChallenge): Promise<void>;
  otpCode(): Promise<string>;
}

export interface SignupOptions {
  profiles: ProfileStore;
  address: ClusterAddress;
  token: string;
  caPin?: string;
  deviceName?: string;
  prompts: SignupPrompts;
}

export async function signup(options: SignupOptions): Promise<{ user: string }> {
  if (!options.token)
    throw new KeyportError('INVALID_ARGUMENT', 'Give the signup token (--token).', { fieldPath: 'token' });
  const trusted = await ensureTrustedCluster(options.profiles, options.address, {
    caPin: options.caPin,
    prompt: options.prompts,
  });
  const api = connectTrusted(trusted);
  try {
    const started = await api.auth.startSignup({
      token: options.token,
      deviceType: MFADeviceType.MFA_DEVICE_TYPE_TOTP,
    });
    const password = await options.prompts.newPassword(started.user);
    let code: string | undefined;
    if (started.registerChallenge?.totp) {
      await options.prompts.showTotpEnrollment(started.registerChallenge.totp);
      code = (await options.prompts.otpCode()).trim();
    }
    const completed = await api.auth.completeSignup({
      token: options.token,
      password,
      newDevice: code
        ? {
            challengeId: started.registerChallenge?.challengeId ?? '',
            deviceName: options.deviceName ?? 'otp',
            response: { $case: 'totp', value: { code } },
          }
        : undefined,
    });
    return { user: completed.user };
  } finally {
    api.close();
  }
}
