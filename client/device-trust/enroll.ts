// Enrollment of this device, by its signed-in user (from the CLI or Keyport Connect):
//   1. BeginDeviceEnrollment{token | current_device, asset tag, OS, EK, AK} → a credential sealed to this
//      TPM's EK for the AK, and a nonce;
//   2. the TPM activates the credential and quotes the nonce;
//   3. CompleteDeviceEnrollment{activated secret, quote} → the device, enrolled, owned by this user.
// And this device's status as the cluster sees it.
import { KeyportError } from '../../proto/errors';
import type { Device, DeviceStatus } from '../../proto/gen/keyport/v1/device';
import { adminActionFor, authorizeAdminActions } from '../ceremonies/admin-action';
import type { MfaPrompts } from '../ceremonies/mfa';
import { parseClusterAddress } from '../cluster-trust';
import type { Profile, ProfileStore } from '../profiles';
import { connectAsProfile, webauthnOrigin } from '../session';
import type { CardSessions } from '../hardware/piv/card-sessions';
import type { PivPrompts } from '../hardware/piv/signer';
import { deviceAssetTag, deviceOsType } from './asset-tag';
import { tpmConfigured, TrustedDevice } from './device';
import type { DeviceTrustOptions } from './device';

export interface EnrollOptions extends DeviceTrustOptions {
  /** The token from `keyport admin devices enroll`; without it, self-enrollment (`--current-device`). */
  token?: string;
  /** Told when the TPM starts and ends its work (it can take seconds on a real TPM). */
  onProgress?: (step: 'reading-tpm' | 'activating' | 'done') => void;
  onCall?: (method: string) => void;
  /** The PIN and touch of a session key on a PIV card. */
  piv?: PivPrompts;
  /** The process's long-lived card sessions (Keyport Connect's). */
  cards?: CardSessions;
  /**
   * Self-enrollment registers a device, an admin write: where the cluster enforces MFA for admin actions,
   * BeginDeviceEnrollment carries a security key's answer bound to it, asked with these.
   */
  adminMfa?: { prompts: MfaPrompts; signal?: AbortSignal };
}

export async function enrollThisDevice(
  profiles: ProfileStore,
  profile: Profile,
  options: EnrollOptions,
): Promise<Device> {
  const env = options.env ?? process.env;
  if (!tpmConfigured(env)) throw noTpm();
  const api = await connectAsProfile(profiles, profile, options.onCall, pivOption(options));
  let device: TrustedDevice | undefined;
  try {
    options.onProgress?.('reading-tpm');
    device = await TrustedDevice.open(options);
    // 1. This device's keys, and which device the token (or self-enrollment) names; self-enrollment with
    //    the touch MFA for admin actions asks for (none where the cluster does not enforce it).
    const request = {
      token: options.token ?? '',
      currentDevice: !options.token,
      device: await device.enrollmentData(),
    };
    const devices =
      options.token || !options.adminMfa
        ? api.devices
        : (
            await authorizeAdminActions(api, [adminActionFor('devices', 'beginDeviceEnrollment', request)], {
              ...options.adminMfa,
              origin: await webauthnOriginOf(profiles, profile),
            })
          ).devices;
    const begun = await devices.beginDeviceEnrollment(request);
    if (!begun.challenge) throw new KeyportError('INTERNAL', 'The cluster sent no enrollment challenge.');
    // 2. The TPM proves it holds the EK and the AK.
    options.onProgress?.('activating');
    const response = await device.answer(begun.challenge);
    // 3. The cluster binds the AK to the device.
    const enrolled = await api.devices.completeDeviceEnrollment({ challengeId: begun.challengeId, response });
    const trusted = await profiles.getTrustedCluster(parseClusterAddress(profile.address));
    if (trusted) await profiles.trustCluster({ ...trusted, deviceCredentialId: enrolled.credentialId });
    options.onProgress?.('done');
    return enrolled;
  } finally {
    api.close();
    await device?.close().catch(() => {});
  }
}

export interface ThisDeviceStatus extends DeviceStatus {
  assetTag: string;
  osType: string;
  /** Why this machine's TPM cannot be used, when it cannot. */
  tpmProblem?: string;
  credentialId?: string;
}

/** What the cluster knows of this device, and whether this session carries it. */
export async function thisDeviceStatus(
  profiles: ProfileStore,
  profile: Profile,
  options: DeviceTrustOptions & {
    onCall?: (method: string) => void;
    piv?: PivPrompts;
    cards?: CardSessions;
  } = {},
): Promise<ThisDeviceStatus> {
  const env = options.env ?? process.env;
  let assetTag = '';
  let tpmProblem: string | undefined;
  let credentialId: string | undefined;
  try {
    assetTag = deviceAssetTag(env);
  } catch (error) {
    tpmProblem = (error as Error).message;
  }
  if (!tpmConfigured(env)) {
    tpmProblem ??= noTpm().message;
  } else {
    const device = await TrustedDevice.open(options).catch((error: unknown) => {
      tpmProblem ??= (error as Error).message;
      return undefined;
    });
    credentialId = await device?.credentialId().catch(() => undefined);
    await device?.close().catch(() => {});
  }
  const api = await connectAsProfile(profiles, profile, options.onCall, pivOption(options));
  try {
    const status = await api.devices.getDeviceStatus({ assetTag, credentialId: credentialId ?? '' });
    // Enrolled, while this machine's TPM (which works) has no attestation key: another TPM was enrolled.
    const otherTpm = status.state === 'enrolled' && !credentialId && !tpmProblem;
    return {
      ...status,
      ...(otherTpm ? { state: 'other_tpm' } : {}),
      assetTag,
      osType: deviceOsType(),
      ...(tpmProblem ? { tpmProblem } : {}),
      ...(credentialId ? { credentialId } : {}),
    };
  } finally {
    api.close();
  }
}

const noTpm = () =>
  new KeyportError(
    'PRECONDITION_FAILED',
    'This machine has no TPM that Keyport can use (no /dev/tpmrm0, and KEYPORT_TPM_TCTI is not set).',
  );

const pivOption = ({ piv, cards }: { piv?: PivPrompts; cards?: CardSessions }) => ({
  ...(piv ? { piv } : {}),
  ...(cards ? { cards } : {}),
});

/** The origin a security key's answer names for this profile's cluster (its public address). */
async function webauthnOriginOf(profiles: ProfileStore, profile: Profile): Promise<string> {
  const trusted = await profiles.getTrustedCluster(parseClusterAddress(profile.address));
  return trusted ? webauthnOrigin(trusted) : `https://${profile.address}`;
}
