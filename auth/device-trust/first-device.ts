// The seed's IdP-compromise protection: where device trust is required (the cluster, or a role of the
// user), a user's first MFA device may only be registered from a trusted device. At signup the device
// proves itself with a quote over a DEVICE_AUTH nonce; a signed-in user's session must carry the device
// (an SSO user, who has no device after the IdP's login, registers their first key that way).
import { KeyportError } from '../../proto/errors';
import type { DeviceChallenge } from '../../proto/gen/keyport/v1/device';
import type { DeviceAuthentication } from '../../proto/gen/keyport/v1/auth';
import { challengeRefusal, createChallenge, spendChallenge } from '../challenges';
import type { ServiceContext } from '../context';
import { loadCap, loadRoles } from '../policy';
import type { ClusterPolicy } from '../policy';
import { ssoUserFields } from '../sso/requests';
import type { UserRow } from '../storage/store';
import { newDeviceNonce, verifyDeviceQuote } from './ceremony';
import { deviceTrustDecision } from './policy';
import type { SessionDevice } from './policy';

const FIRST_DEVICE_CHALLENGE_TTL_MS = 5 * 60 * 1000;

/** Whether `user`'s first MFA device needs a trusted device, and the refusal when `device` is missing. */
export async function firstDeviceDecision(
  ctx: ServiceContext,
  cap: ClusterPolicy,
  user: UserRow,
  device?: SessionDevice,
) {
  const spec = JSON.parse(user.spec_json) as { roles?: string[] };
  const roles = await loadRoles(ctx.store, spec.roles ?? []);
  return deviceTrustDecision(cap.device_trust.mode, { roles, device }, { kind: 'first_mfa_device' });
}

/**
 * A signed-in user's MFA device registration: refused with DEVICE_TRUST_REQUIRED (audited `mfa.add`, with an
 * SSO user's connector and IdP subject) when it would be their first and their session has no trusted device
 * where one is required. No existing device can answer for a first one; the trusted device is its check.
 */
export async function checkFirstMfaDevice(
  ctx: ServiceContext,
  user: UserRow,
  session: { device?: SessionDevice; clientAddr: string; deviceName?: string },
): Promise<void> {
  const decision = await firstDeviceDecision(ctx, await loadCap(ctx.store), user, session.device);
  if (decision.allowed) return;
  await ctx.audit.record({
    type: 'mfa.add',
    actor: user.name,
    clientAddr: session.clientAddr,
    success: false,
    message: decision.error.message,
    fields: {
      ...(session.deviceName ? { device: session.deviceName } : {}),
      first_device: true,
      ...ssoUserFields(user),
    },
  });
  throw decision.error;
}

/** StartSignup: a nonce for the enrolled, unlocked device the client names. */
export async function firstDeviceChallenge(
  ctx: ServiceContext,
  user: string,
  credentialId: string,
  notAfterMs: number,
): Promise<{ challengeId: string; challenge: DeviceChallenge }> {
  const device = credentialId ? await ctx.store.devices.byCredential(credentialId) : undefined;
  if (!device || device.locked || device.enroll_status !== 'enrolled') {
    throw new KeyportError(
      'DEVICE_TRUST_REQUIRED',
      'This cluster lets a first MFA device be registered only from a trusted device: sign up on an enrolled device.',
      { fieldPath: 'device_credential_id' },
    );
  }
  const nonce = newDeviceNonce();
  const { id } = await createChallenge(
    ctx,
    'DEVICE_AUTH',
    user,
    { kind: 'auth', deviceId: device.id, credentialId, nonce: nonce.toString('base64') },
    { ttlMs: FIRST_DEVICE_CHALLENGE_TTL_MS, notAfterMs },
  );
  return {
    challengeId: id,
    challenge: { nonce, credentialBlob: Buffer.alloc(0), encryptedSecret: Buffer.alloc(0) },
  };
}

/** CompleteSignup: the device's quote over that nonce, by the credential still enrolled. */
export async function verifyFirstDevice(
  ctx: ServiceContext,
  user: string,
  answer: DeviceAuthentication | undefined,
): Promise<SessionDevice> {
  if (!answer?.challengeId) {
    throw new KeyportError(
      'DEVICE_TRUST_REQUIRED',
      'This cluster lets a first MFA device be registered only from a trusted device: sign up on an enrolled device.',
      { fieldPath: 'device' },
    );
  }
  const spent = await spendChallenge(ctx, answer.challengeId, ['DEVICE_AUTH'], user);
  if (!spent.ok) throw challengeRefusal(spent.reason, 'start the signup again');
  const payload = spent.challenge.payload;
  const device = await ctx.store.devices.get(payload.deviceId);
  if (!device?.ak_public || device.locked || device.credential_id !== payload.credentialId) {
    throw new KeyportError(
      'DEVICE_TRUST_REQUIRED',
      'The trusted device was removed or locked during signup.',
    );
  }
  verifyDeviceQuote(
    device.ak_public,
    payload,
    { quote: answer.quote, activatedSecret: Buffer.alloc(0) },
    'device',
  );
  return { deviceId: device.id, assetTag: device.asset_tag, credentialId: payload.credentialId };
}
