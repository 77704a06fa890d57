// The person's own MFA devices. Adding or removing one first proves possession of an existing device:
//   1. CreateAuthenticateChallenge{MANAGE_DEVICES} → answered with an existing key or OTP code
//   2. CreateRegisterChallenge{that answer, type} → creation options or a new OTP secret
//   3. the new key is tapped (or the new code entered) → AddMFADevice
import { KeyportError } from '../../proto/errors';
import { ChallengeScope, MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import type { MFADevice, MFARegisterResponse, TOTPRegisterChallenge } from '../../proto/gen/keyport/v1/mfa';
import type { ClusterApi } from '../api';
import type { CardSessions } from '../hardware/piv/card-sessions';
import type { PivPrompts } from '../hardware/piv/signer';
import type { Profile, ProfileStore } from '../profiles';
import { connectAsProfile, notSignedIn, webauthnOrigin } from '../session';
import { parseClusterAddress } from '../cluster-trust';
import { answerChallenge } from './mfa';
import type { MfaPreference, MfaPrompts } from './mfa';
import { registerKey } from './mfa';

export interface DevicePrompts extends MfaPrompts {
  /** A new OTP device: show its secret, then the code it shows comes from otpCode(). */
  showTotpEnrollment(enrollment: TOTPRegisterChallenge): Promise<void>;
  /** Between proving an existing device and registering the new one ("now tap the new key"). */
  say(line: string): void;
}

/** How a session key on a PIV card asks for its PIN and touch (without it, a card's PIN cannot be asked). */
export interface SessionKeyPrompts {
  piv?: PivPrompts;
  /** The process's long-lived card sessions (Keyport Connect's), so a PIN-"once" key asks its PIN once. */
  cards?: CardSessions;
}

async function withProfileApi<T>(
  profiles: ProfileStore,
  { piv, cards }: SessionKeyPrompts,
  work: (api: ClusterApi, origin: string) => Promise<T>,
): Promise<T> {
  const profile: Profile | undefined = await profiles.getProfile();
  if (!profile) throw notSignedIn();
  const trusted = await profiles.getTrustedCluster(parseClusterAddress(profile.address));
  const api = await connectAsProfile(profiles, profile, undefined, {
    ...(piv ? { piv } : {}),
    ...(cards ? { cards } : {}),
  });
  try {
    return await work(api, trusted ? webauthnOrigin(trusted) : `https://${profile.address}`);
  } finally {
    api.close();
  }
}

export function listDevices(profiles: ProfileStore, options: SessionKeyPrompts = {}): Promise<MFADevice[]> {
  return withProfileApi(profiles, options, async (api) => (await api.user.listMfaDevices({})).devices);
}

async function proveExistingDevice(
  api: ClusterApi,
  origin: string,
  prompts: MfaPrompts,
  preference?: MfaPreference,
  signal?: AbortSignal,
) {
  const challenge = await api.user.createAuthenticateChallenge({
    scope: ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES,
    adminActions: [],
  });
  // Whether an existing device must answer is the server's word (a user without devices on a cluster
  // without MFA proves nothing more than the session).
  return answerChallenge(challenge, { origin, prompts, preference, signal });
}

async function deviceName(name: string | (() => Promise<string>)): Promise<string> {
  return typeof name === 'string' ? name : (await name()).trim();
}

export async function addDevice(
  profiles: ProfileStore,
  options: SessionKeyPrompts & {
    /** A name, or a question asked once the new device has answered (the app asks it last). */
    name: string | (() => Promise<string>);
    type: 'webauthn' | 'totp';
    passwordless?: boolean;
    existing?: MfaPreference;
    prompts: DevicePrompts;
    /** Aborting cancels the ceremony; a key waiting for a touch gets CTAPHID CANCEL. */
    signal?: AbortSignal;
  },
): Promise<MFADevice> {
  return withProfileApi(profiles, options, async (api, origin) => {
    const existing = await proveExistingDevice(
      api,
      origin,
      options.prompts,
      options.existing,
      options.signal,
    );
    const challenge = await api.user.createRegisterChallenge({
      existingMfaResponse: existing,
      deviceType:
        options.type === 'webauthn'
          ? MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN
          : MFADeviceType.MFA_DEVICE_TYPE_TOTP,
      passwordless: options.passwordless ?? false,
    });
    let newDevice: MFARegisterResponse;
    if (options.type === 'webauthn') {
      options.prompts.say('Tap your new security key');
      const registration = await registerKey(challenge.webauthnCreationOptionsJson, {
        origin,
        prompts: options.prompts,
        signal: options.signal,
      });
      newDevice = {
        challengeId: challenge.challengeId,
        deviceName: await deviceName(options.name),
        response: { $case: 'webauthnJson', value: registration },
      };
    } else {
      if (!challenge.totp)
        throw new KeyportError('INTERNAL', 'The cluster sent no OTP secret for the new device.');
      await options.prompts.showTotpEnrollment(challenge.totp);
      const code = (await options.prompts.otpCode()).trim();
      newDevice = {
        challengeId: challenge.challengeId,
        deviceName: await deviceName(options.name),
        response: { $case: 'totp', value: { code } },
      };
    }
    return api.user.addMfaDevice({ newDevice });
  });
}

export async function removeDevice(
  profiles: ProfileStore,
  options: SessionKeyPrompts & {
    name: string;
    existing?: MfaPreference;
    prompts: MfaPrompts;
    signal?: AbortSignal;
  },
): Promise<void> {
  await withProfileApi(profiles, options, async (api, origin) => {
    const existing = await proveExistingDevice(
      api,
      origin,
      options.prompts,
      options.existing,
      options.signal,
    );
    await api.user.deleteMfaDevice({ name: options.name, existingMfaResponse: existing });
  });
}
