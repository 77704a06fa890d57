// Device trust inside login's two round trips (Keyport needs no third call for it):
//   step 1 (after the password, or with a passwordless challenge): an enrolled credential gets a nonce;
//          with device_trust.auto_enroll, a registered but unenrolled device gets a sealed credential and
//          a nonce, so it enrolls in this same login.
//   step 2: the quote (and the activated credential) are checked; the certificates then carry the device.
// A device that cannot be trusted (unknown, locked, another owner's, not registered) leaves the login
// untrusted and is audited; a device that answers wrongly fails the login.
import { KeyportError } from '../../proto/errors';
import type {
  DeviceChallenge,
  DeviceChallengeResponse,
  DeviceLoginHello,
} from '../../proto/gen/keyport/v1/device';
import type { ServiceContext } from '../context';
import type { ClusterPolicy } from '../policy';
import type { DeviceRow } from '../storage/devices';
import {
  beginTpmEnrollment,
  checkAssetTag,
  checkOsType,
  credentialIdOf,
  finishTpmEnrollment,
  newDeviceNonce,
  verifyDeviceQuote,
} from './ceremony';
import type { DevicePayload } from './payloads';
import type { SessionDevice } from './policy';

export interface DeviceLoginStart {
  challenge?: DeviceChallenge;
  payload?: DevicePayload;
}

const FIELD = 'device';

/** Login step 1's device part. Never throws for the device's state: the login goes on untrusted. */
export async function startDeviceLogin(
  ctx: ServiceContext,
  cap: ClusterPolicy,
  hello: DeviceLoginHello | undefined,
  clientAddr: string,
): Promise<DeviceLoginStart> {
  if (cap.device_trust.mode === 'off' || !hello) return {};
  const untrusted = async (message: string): Promise<DeviceLoginStart> => {
    await audit(ctx, 'device.authenticate', clientAddr, false, message, {});
    return {};
  };
  // An enrolled credential (named by the client, or found from the AK it offers for enrollment).
  const credentialId =
    hello.credentialId || (hello.enroll?.akPublic.length ? credentialIdOf(hello.enroll.akPublic) : '');
  const enrolled = credentialId ? await ctx.store.devices.byCredential(credentialId) : undefined;
  if (enrolled) {
    if (enrolled.locked) return untrusted(`device ${enrolled.asset_tag} is locked`);
    const nonce = newDeviceNonce();
    return {
      challenge: { nonce, credentialBlob: Buffer.alloc(0), encryptedSecret: Buffer.alloc(0) },
      payload: { kind: 'auth', deviceId: enrolled.id, credentialId, nonce: nonce.toString('base64') },
    };
  }
  // Auto-enrollment of a registered device.
  const data = hello.enroll;
  if (!data || !cap.device_trust.auto_enroll) {
    return hello.credentialId ? untrusted('unknown device credential') : {};
  }
  const assetTag = checkAssetTag(data.assetTag, `${FIELD}.enroll.asset_tag`);
  const osType = checkOsType(data.osType, `${FIELD}.enroll.os_type`);
  const device = (await ctx.store.devices.byAssetTag(assetTag)).find((d) => d.os_type === osType);
  if (!device) return untrusted(`device ${assetTag}/${osType} is not registered: not auto-enrolled`);
  if (device.locked) return untrusted(`device ${assetTag} is locked: not auto-enrolled`);
  if (device.enroll_status === 'enrolled') {
    return untrusted(`device ${assetTag} is enrolled with another credential`);
  }
  try {
    return beginTpmEnrollment(data, {
      deviceId: device.id,
      allowedEkCas: cap.device_trust.ekcert_allowed_cas,
      now: ctx.now(),
      fieldPrefix: `${FIELD}.enroll`,
    });
  } catch (error) {
    if (!(error instanceof KeyportError)) throw error;
    return untrusted(`device ${assetTag} not auto-enrolled: ${error.message}`);
  }
}

/**
 * Login step 2's device part: the device this login may carry in its certificates, or undefined. A wrong
 * answer (quote, activation) throws ACCESS_DENIED; no answer at all leaves the login untrusted.
 */
export async function finishDeviceLogin(
  ctx: ServiceContext,
  payload: DevicePayload | undefined,
  response: DeviceChallengeResponse | undefined,
  user: string,
  clientAddr: string,
): Promise<SessionDevice | undefined> {
  if (!payload) return undefined;
  if (!response?.quote) {
    await audit(ctx, 'device.authenticate', clientAddr, false, 'the client sent no quote', { user }, user);
    return undefined;
  }
  const device = await ctx.store.devices.get(payload.deviceId);
  const gone = (why: string) =>
    audit(ctx, 'device.authenticate', clientAddr, false, why, { device_id: payload.deviceId }, user).then(
      () => undefined,
    );
  if (!device) return gone('the device was deleted during login');
  if (device.locked) return gone(`device ${device.asset_tag} was locked during login`);

  if (payload.kind === 'auth') {
    if (device.credential_id !== payload.credentialId || !device.ak_public) {
      return gone(`device ${device.asset_tag} was re-enrolled during login`);
    }
    await refuseWrongAnswer(ctx, device, user, clientAddr, () =>
      verifyDeviceQuote(device.ak_public!, payload, response, 'device_response'),
    );
    if (device.owner !== user) {
      return gone(`device ${device.asset_tag} is enrolled by another user`);
    }
    await audit(
      ctx,
      'device.authenticate',
      clientAddr,
      true,
      `device ${device.asset_tag} authenticated`,
      {
        device_id: device.id,
      },
      user,
    );
    return sessionDevice(device, payload.credentialId);
  }

  // Auto-enrollment: activation and quote, then the credential is bound, first enrollment wins.
  await refuseWrongAnswer(ctx, device, user, clientAddr, () =>
    finishTpmEnrollment(payload, response, 'device_response'),
  );
  const enrolled = await ctx.store.devices.enroll(
    device.id,
    {
      credentialId: payload.credentialId,
      akPublic: payload.akPublic,
      ekFingerprint: payload.ekFingerprint,
      ekCertificate: payload.ekCertificatePem,
      owner: user,
    },
    ctx.now(),
  );
  if (!enrolled) return gone(`device ${device.asset_tag} was enrolled by someone else during login`);
  await audit(
    ctx,
    'device.enroll',
    clientAddr,
    true,
    `device "${device.asset_tag}"/${device.os_type} auto-enrolled`,
    {
      device_id: device.id,
      credential_id: payload.credentialId,
      ek_fingerprint: payload.ekFingerprint,
      auto: true,
    },
    user,
  );
  return sessionDevice(device, payload.credentialId);
}

async function refuseWrongAnswer(
  ctx: ServiceContext,
  device: DeviceRow,
  user: string,
  clientAddr: string,
  check: () => void,
): Promise<void> {
  try {
    check();
  } catch (error) {
    if (!(error instanceof KeyportError)) throw error;
    await audit(
      ctx,
      'device.authenticate',
      clientAddr,
      false,
      `device ${device.asset_tag}: ${error.message}`,
      {
        device_id: device.id,
      },
      user,
    );
    throw new KeyportError('ACCESS_DENIED', `Device authentication failed: ${error.message}`, {
      fieldPath: error.fields.fieldPath,
    });
  }
}

export function sessionDevice(device: DeviceRow, credentialId: string): SessionDevice {
  return { deviceId: device.id, assetTag: device.asset_tag, credentialId };
}

function audit(
  ctx: ServiceContext,
  type: 'device.authenticate' | 'device.enroll',
  clientAddr: string,
  success: boolean,
  message: string,
  fields: Record<string, unknown>,
  actor = 'unknown',
): Promise<void> {
  return ctx.audit.record({ type, actor, clientAddr, success, message, fields });
}
