// Signup with a one-time token: StartSignup shows what the first device needs (a TOTP secret here),
// CompleteSignup spends the token, sets the password and registers the device, all or nothing.
import { KeyportError } from '../../proto/errors';
import { MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import type { MFARegisterResponse, TOTPRegisterChallenge } from '../../proto/gen/keyport/v1/mfa';
import type { ClusterAddress } from '../cluster-trust';
import type { ProfileStore } from '../profiles';
import { connectTrusted, ensureTrustedCluster, webauthnOrigin } from '../session';
import type { TrustPrompt } from '../session';
import type { SecurityKeyPrompts } from '../webauthn';
import { registerKey } from './mfa';
import { tpmConfigured, TrustedDevice } from '../device-trust/device';
import type { DeviceTrustOptions } from '../device-trust/device';

export interface SignupPrompts extends TrustPrompt {
  newPassword(user: string): Promise<string>;
  /** Show the otpauth:// URI and secret once; the person adds them to an authenticator app. */
  showTotpEnrollment(enrollment: TOTPRegisterChallenge): Promise<void>;
  otpCode(): Promise<string>;
  /** Tap and PIN prompts, when the first device is a security key. */
  securityKey?: SecurityKeyPrompts;
}

export interface SignupOptions {
  profiles: ProfileStore;
  address: ClusterAddress;
  token: string;
  caPin?: string;
  deviceName?: string;
  /** The first MFA device: a security key ('webauthn') or an authenticator app ('otp', the default). */
  deviceType?: 'otp' | 'webauthn';
  /** Register that security key as a passkey, for passwordless login (needs deviceType 'webauthn'). */
  passwordless?: boolean;
  prompts: SignupPrompts;
  /** This machine's TPM, for clusters that register a first MFA device only from a trusted device. */
  device?: DeviceTrustOptions | false;
}

export async function signup(options: SignupOptions): Promise<{ user: string }> {
  if (!options.token) {
    throw new KeyportError('INVALID_ARGUMENT', 'Give the signup token (--token).', { fieldPath: 'token' });
  }
  const trusted = await ensureTrustedCluster(options.profiles, options.address, {
    caPin: options.caPin,
    prompt: options.prompts,
  });
  const api = connectTrusted(trusted);
  // Where device trust is on, this machine's enrolled credential goes along: a cluster that requires a
  // trusted device for a first MFA device then asks it for a quote.
  const device = await openSignupDevice(trusted.deviceTrust?.mode ?? 'off', options.device);
  try {
    const wantsKey = options.deviceType === 'webauthn';
    const started = await api.auth.startSignup({
      token: options.token,
      deviceType: wantsKey ? MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN : MFADeviceType.MFA_DEVICE_TYPE_TOTP,
      passwordless: options.passwordless ?? false,
      deviceCredentialId: (await device?.credentialId()) ?? '',
    });
    const password = await options.prompts.newPassword(started.user);
    const challenge = started.registerChallenge;
    let newDevice: MFARegisterResponse | undefined;
    if (challenge?.webauthnCreationOptionsJson) {
      if (!options.prompts.securityKey) {
        throw new KeyportError(
          'PRECONDITION_FAILED',
          'Registering a security key needs a client that can prompt for it.',
        );
      }
      const registration = await registerKey(challenge.webauthnCreationOptionsJson, {
        origin: webauthnOrigin(trusted),
        prompts: { otpCode: options.prompts.otpCode, securityKey: options.prompts.securityKey },
      });
      newDevice = {
        challengeId: challenge.challengeId,
        deviceName: options.deviceName ?? 'security-key',
        response: { $case: 'webauthnJson', value: registration },
      };
    } else if (challenge?.totp) {
      await options.prompts.showTotpEnrollment(challenge.totp);
      const code = (await options.prompts.otpCode()).trim();
      newDevice = {
        challengeId: challenge.challengeId,
        deviceName: options.deviceName ?? 'otp',
        response: { $case: 'totp', value: { code } },
      };
    }
    const quote =
      device && started.deviceChallenge ? (await device.answer(started.deviceChallenge)).quote : undefined;
    const completed = await api.auth.completeSignup({
      token: options.token,
      password,
      newDevice,
      device: quote ? { challengeId: started.deviceChallengeId, quote } : undefined,
    });
    return { user: completed.user };
  } finally {
    api.close();
    await device?.close().catch(() => {});
  }
}

async function openSignupDevice(
  mode: string,
  options: DeviceTrustOptions | false | undefined,
): Promise<TrustedDevice | undefined> {
  const env = (options && options.env) || process.env;
  if (options === false || mode === 'off' || !tpmConfigured(env)) return undefined;
  return TrustedDevice.open(options || {}).catch(() => undefined);
}
