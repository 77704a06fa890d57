// DeviceTrustService: the device inventory (device admins), enrollment tokens, the enrollment ceremony
// of a device's TPM by its user, and a device's status. Every call needs a client certificate. The TPM
// checks are in device-trust/ceremony.ts; login's device part is in device-trust/login.ts.
import { randomUUID } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import type {
  AddDeviceRequest,
  BeginDeviceEnrollmentRequest,
  CompleteDeviceEnrollmentRequest,
  CreateDeviceEnrollTokenRequest,
  DeleteDeviceRequest,
  DeleteDeviceResponse,
  Device,
  DeviceEnrollChallenge,
  DeviceEnrollToken,
  DeviceStatus,
  GetDeviceStatusRequest,
  ListDevicesResponse,
  LockDeviceRequest,
  UnlockDeviceRequest,
} from '../../proto/gen/keyport/v1/device';
import { requireAdminActionMfa } from '../admin-mfa';
import { authorize, permissionsOf } from '../authorize';
import { challengeRefusal, createChallenge, spendChallenge } from '../challenges';
import type { ServiceContext } from '../context';
import {
  beginTpmEnrollment,
  checkAssetTag,
  checkOsType,
  finishTpmEnrollment,
} from '../device-trust/ceremony';
import { authenticate } from '../identity';
import type { Identity } from '../identity';
import { loadCap } from '../policy';
import type { CallContext } from '../rpc';
import type { DeviceRow } from '../storage/devices';
import { hashToken, newToken } from '../tokens';

export const DEVICE_ENROLL_TOKEN_TTL_MS = 30 * 60 * 1000;
const MAX_ENROLL_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;
const ENROLL_CHALLENGE_TTL_MS = 5 * 60 * 1000;

export function deviceView(row: DeviceRow): Device {
  return {
    id: row.id,
    osType: row.os_type,
    assetTag: row.asset_tag,
    enrollStatus: row.enroll_status,
    owner: row.owner ?? '',
    credentialId: row.credential_id ?? '',
    ekFingerprint: row.ek_fingerprint ?? '',
    createdMs: row.created_ms,
    enrolledMs: row.enrolled_ms ?? 0,
    locked: row.locked === 1,
    lockReason: row.lock_reason ?? '',
    source: row.source,
  };
}

const invalidToken = () =>
  new KeyportError(
    'ACCESS_DENIED',
    'The device enrollment token is invalid or was already used; ask a device admin for a new one.',
    { fieldPath: 'token' },
  );
const expiredToken = () =>
  new KeyportError('EXPIRED', 'The device enrollment token has expired; ask a device admin for a new one.', {
    fieldPath: 'token',
  });
const deviceTrustOff = () =>
  new KeyportError(
    'PRECONDITION_FAILED',
    'Device trust is off on this cluster (cluster_auth_preference device_trust.mode: off).',
  );

export function deviceService(ctx: ServiceContext) {
  async function audit(
    type: 'device.add' | 'device.delete' | 'device.lock' | 'device.unlock' | 'device.token' | 'device.enroll',
    actor: Identity | string,
    call: CallContext,
    success: boolean,
    message: string,
    fields: Record<string, unknown> = {},
  ): Promise<void> {
    await ctx.audit.record({ type, actor, clientAddr: call.clientAddr, success, message, fields });
  }

  /** A device by id or asset tag; an asset tag on several OSes must be given as an id. */
  async function findDevice(ref: string, fieldPath = 'device'): Promise<DeviceRow> {
    if (!ref) throw new KeyportError('INVALID_ARGUMENT', 'Name a device by asset tag or id.', { fieldPath });
    const byId = await ctx.store.devices.get(ref);
    if (byId) return byId;
    const byTag = await ctx.store.devices.byAssetTag(ref);
    if (byTag.length === 1) return byTag[0]!;
    if (byTag.length > 1) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        `Asset tag "${ref}" names ${byTag.length} devices (${byTag.map((d) => d.os_type).join(', ')}); give the device id.`,
        { fieldPath },
      );
    }
    throw new KeyportError('NOT_FOUND', `No device "${ref}" in the inventory.`, { fieldPath });
  }

  return {
    async addDevice(request: AddDeviceRequest, call: CallContext): Promise<Device> {
      const identity = await authorize(ctx, call, 'device', 'create');
      const osType = checkOsType(request.osType, 'os_type');
      const assetTag = checkAssetTag(request.assetTag, 'asset_tag');
      const now = ctx.now();
      const id = randomUUID();
      const inserted = await ctx.store.devices.insert({
        id,
        os_type: osType,
        asset_tag: assetTag,
        source: 'manual',
        enroll_status: 'not_enrolled',
        created_ms: now,
        updated_ms: now,
        locked: 0,
      });
      if (!inserted) {
        throw new KeyportError(
          'ALREADY_EXISTS',
          `Device ${assetTag}/${osType} is already in the inventory.`,
          {
            fieldPath: 'asset_tag',
          },
        );
      }
      await audit('device.add', identity, call, true, `device ${assetTag}/${osType} added`, {
        device_id: id,
      });
      return deviceView((await ctx.store.devices.get(id))!);
    },

    async listDevices(_request: unknown, call: CallContext): Promise<ListDevicesResponse> {
      await authorize(ctx, call, 'device', 'list');
      return { devices: (await ctx.store.devices.list()).map(deviceView) };
    },

    async deleteDevice(request: DeleteDeviceRequest, call: CallContext): Promise<DeleteDeviceResponse> {
      const identity = await authorize(ctx, call, 'device', 'delete');
      const device = await findDevice(request.device);
      await ctx.store.devices.delete(device.id);
      await audit(
        'device.delete',
        identity,
        call,
        true,
        `device ${device.asset_tag}/${device.os_type} deleted`,
        {
          device_id: device.id,
        },
      );
      return {};
    },

    async lockDevice(request: LockDeviceRequest, call: CallContext): Promise<Device> {
      const identity = await authorize(ctx, call, 'device', 'update');
      const device = await findDevice(request.device);
      await ctx.store.devices.setLock(device.id, true, request.reason || null, ctx.now());
      await audit('device.lock', identity, call, true, `device ${device.asset_tag} locked`, {
        device_id: device.id,
        reason: request.reason,
      });
      return deviceView((await ctx.store.devices.get(device.id))!);
    },

    async unlockDevice(request: UnlockDeviceRequest, call: CallContext): Promise<Device> {
      const identity = await authorize(ctx, call, 'device', 'update');
      const device = await findDevice(request.device);
      await ctx.store.devices.setLock(device.id, false, null, ctx.now());
      await audit('device.unlock', identity, call, true, `device ${device.asset_tag} unlocked`, {
        device_id: device.id,
      });
      return deviceView((await ctx.store.devices.get(device.id))!);
    },

    async createDeviceEnrollToken(
      request: CreateDeviceEnrollTokenRequest,
      call: CallContext,
    ): Promise<DeviceEnrollToken> {
      const identity = await authorize(ctx, call, 'device', 'create_enroll_token');
      const device = await findDevice(request.device);
      if (device.enroll_status === 'enrolled') {
        throw new KeyportError(
          'ALREADY_EXISTS',
          `Device ${device.asset_tag} is already enrolled; remove it and add it again to enroll another TPM.`,
          { fieldPath: 'device' },
        );
      }
      const ttlMs = Number(request.ttlSeconds) * 1000 || DEVICE_ENROLL_TOKEN_TTL_MS;
      if (ttlMs < 0 || ttlMs > MAX_ENROLL_TOKEN_TTL_MS) {
        throw new KeyportError('INVALID_ARGUMENT', 'An enrollment token lasts at most 24 hours.', {
          fieldPath: 'ttl_seconds',
        });
      }
      const token = newToken();
      const now = ctx.now();
      await ctx.store.devices.insertToken(hashToken(token), device.id, now, now + ttlMs);
      await audit('device.token', identity, call, true, `enrollment token for device ${device.asset_tag}`, {
        device_id: device.id,
        expires_ms: now + ttlMs,
      });
      return { token, expiresMs: now + ttlMs, device: deviceView(device) };
    },

    async beginDeviceEnrollment(
      request: BeginDeviceEnrollmentRequest,
      call: CallContext,
    ): Promise<DeviceEnrollChallenge> {
      const identity = await authenticate(ctx, call);
      // Every refusal from here on is audited, with the asset tag the device gave.
      return beginEnrollment(identity, request, call).catch(async (error: unknown) => {
        if (error instanceof KeyportError) {
          await audit('device.enroll', identity, call, false, `enrollment refused: ${error.message}`, {
            asset_tag: request.device?.assetTag.slice(0, 64) ?? '',
            self: !request.token,
          });
        }
        throw error;
      });
    },

    async completeDeviceEnrollment(
      request: CompleteDeviceEnrollmentRequest,
      call: CallContext,
    ): Promise<Device> {
      const identity = await authenticate(ctx, call);
      // 4. The challenge from step one, spent now whatever happens next; for this user, not expired.
      const spent = await spendChallenge(ctx, request.challengeId, ['DEVICE_ENROLL'], identity.user);
      if (!spent.ok) throw challengeRefusal(spent.reason, 'start the enrollment again');
      const payload = spent.challenge.payload;
      // 5. The TPM activated the sealed secret, and its AK quoted the nonce.
      try {
        finishTpmEnrollment(payload, request.response, 'response');
      } catch (error) {
        if (error instanceof KeyportError) {
          await audit('device.enroll', identity, call, false, `enrollment refused: ${error.message}`, {
            device_id: payload.deviceId,
          });
        }
        throw error;
      }
      // 6. Token spent, device registered (self-enrollment) and enrolled: together or not at all.
      const now = ctx.now();
      const device = await ctx.store.transaction(async (tx) => {
        if (payload.tokenHash) {
          const token = await tx.devices.spendToken(payload.tokenHash);
          if (!token || token.device_id !== payload.deviceId) throw invalidToken();
          if (token.expires_ms <= now) throw expiredToken();
        }
        let deviceId = payload.deviceId;
        if (payload.register) {
          const inserted = await tx.devices.insert({
            id: deviceId,
            os_type: payload.register.osType,
            asset_tag: payload.register.assetTag,
            source: 'self',
            enroll_status: 'not_enrolled',
            created_ms: now,
            updated_ms: now,
            locked: 0,
          });
          if (!inserted) {
            const existing = (await tx.devices.byAssetTag(payload.register.assetTag)).find(
              (d) => d.os_type === payload.register!.osType,
            );
            deviceId = existing?.id ?? deviceId;
          }
        }
        const row = await tx.devices.get(deviceId);
        if (!row)
          throw new KeyportError('NOT_FOUND', 'The device was removed from the inventory during enrollment.');
        if (row.locked) throw new KeyportError('ACCESS_DENIED', `Device ${row.asset_tag} is locked.`);
        const enrolled = await tx.devices.enroll(
          deviceId,
          {
            credentialId: payload.credentialId,
            akPublic: payload.akPublic,
            ekFingerprint: payload.ekFingerprint,
            ekCertificate: payload.ekCertificatePem,
            owner: identity.user,
          },
          now,
        );
        if (!enrolled)
          throw new KeyportError('ALREADY_EXISTS', `Device ${row.asset_tag} is already enrolled.`);
        return (await tx.devices.get(deviceId))!;
      });
      await audit(
        'device.enroll',
        identity,
        call,
        true,
        `device "${device.asset_tag}"/${device.os_type} enrolled`,
        {
          device_id: device.id,
          credential_id: payload.credentialId,
          ek_fingerprint: payload.ekFingerprint,
          self: Boolean(payload.register) || !payload.tokenHash,
        },
      );
      return deviceView(device);
    },

    async getDeviceStatus(request: GetDeviceStatusRequest, call: CallContext): Promise<DeviceStatus> {
      const identity = await authenticate(ctx, call);
      const cap = await loadCap(ctx.store);
      const byCredential = request.credentialId
        ? await ctx.store.devices.byCredential(request.credentialId)
        : undefined;
      const byTag =
        !byCredential && request.assetTag ? await ctx.store.devices.byAssetTag(request.assetTag) : [];
      const row = byCredential ?? (byTag.length === 1 ? byTag[0] : undefined);
      const may = await permissionsOf(ctx, identity);
      const mayList = may('device', 'list');
      const selfEnrollmentAllowed = may('device', 'create') && may('device', 'enroll');
      const state = !row
        ? 'not_registered'
        : row.locked
          ? 'locked'
          : row.enroll_status !== 'enrolled'
            ? 'registered'
            : request.credentialId && row.credential_id !== request.credentialId
              ? 'other_tpm'
              : 'enrolled';
      return {
        state,
        device:
          row && (mayList || row.owner === identity.user || row.enroll_status !== 'enrolled')
            ? deviceView(row)
            : undefined,
        trustedInSession: Boolean(row && identity.device?.deviceId === row.id),
        mode: cap.device_trust.mode,
        selfEnrollmentAllowed,
      };
    },
  };

  /** Enrollment steps 1–3: which device, its EK and AK checked, a credential sealed to them. */
  async function beginEnrollment(
    identity: Identity,
    request: BeginDeviceEnrollmentRequest,
    call: CallContext,
  ): Promise<DeviceEnrollChallenge> {
    const cap = await loadCap(ctx.store);
    if (cap.device_trust.mode === 'off') throw deviceTrustOff();
    // 1. The device's own description, and which device the token (or self-enrollment) names.
    const data = request.device;
    if (!data)
      throw new KeyportError('INVALID_ARGUMENT', 'The device data is missing.', { fieldPath: 'device' });
    const assetTag = checkAssetTag(data.assetTag, 'device.asset_tag');
    const osType = checkOsType(data.osType, 'device.os_type');
    const target = request.token
      ? await deviceForToken(request.token, assetTag, osType)
      : await deviceForSelfEnrollment(identity, call, request.currentDevice, assetTag, osType);
    // 2–3. The EK and AK checked, a credential sealed to them, a nonce for the quote.
    const start = beginTpmEnrollment(data, {
      deviceId: target.deviceId,
      allowedEkCas: cap.device_trust.ekcert_allowed_cas,
      now: ctx.now(),
      fieldPrefix: 'device',
      ...(target.tokenHash ? { tokenHash: target.tokenHash } : {}),
      ...(target.register ? { register: { assetTag, osType } } : {}),
    });
    const enrolledElsewhere = await ctx.store.devices.byCredential(start.payload.credentialId);
    if (enrolledElsewhere) {
      throw new KeyportError(
        'ALREADY_EXISTS',
        `This TPM's attestation key is already enrolled as device ${enrolledElsewhere.asset_tag}.`,
        { fieldPath: 'device.ak_public' },
      );
    }
    const { id, expiresMs } = await createChallenge(ctx, 'DEVICE_ENROLL', identity.user, start.payload, {
      ttlMs: ENROLL_CHALLENGE_TTL_MS,
    });
    return { challengeId: id, challenge: start.challenge, expiresMs, deviceId: target.deviceId };
  }

  /** Step 1 with a token: it exists, is unspent and unexpired, and names this device (not spent yet). */
  async function deviceForToken(
    token: string,
    assetTag: string,
    osType: string,
  ): Promise<{ deviceId: string; tokenHash: string; register?: undefined }> {
    const tokenHash = hashToken(token);
    const row = await ctx.store.devices.peekToken(tokenHash);
    if (!row || row.used) throw invalidToken();
    if (row.expires_ms <= ctx.now()) throw expiredToken();
    const device = await ctx.store.devices.get(row.device_id);
    if (!device) throw invalidToken();
    if (device.asset_tag !== assetTag || device.os_type !== osType) {
      throw new KeyportError(
        'ACCESS_DENIED',
        `This enrollment token is for device "${device.asset_tag}"/${device.os_type}, not for this device ("${assetTag}"/${osType}).`,
        { fieldPath: 'token' },
      );
    }
    checkEnrollable(device);
    return { deviceId: device.id, tokenHash };
  }

  /**
   * Step 1 of self-enrollment: roles that allow device admin, and, where the cluster enforces MFA for admin
   * actions, a security key's answer bound to this call; the device registered now if need be.
   */
  async function deviceForSelfEnrollment(
    identity: Identity,
    call: CallContext,
    currentDevice: boolean,
    assetTag: string,
    osType: string,
  ): Promise<{ deviceId: string; tokenHash?: undefined; register?: boolean }> {
    if (!currentDevice) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        'Give an enrollment token (`--token`), or enroll this device yourself with `--current-device`.',
        { fieldPath: 'token' },
      );
    }
    const may = await permissionsOf(ctx, identity);
    if (!may('device', 'create') || !may('device', 'enroll')) {
      throw new KeyportError(
        'ACCESS_DENIED',
        'Self-enrollment needs a role that allows device admin (editor or device-admin); ask a device admin for an enrollment token.',
      );
    }
    // Registering and enrolling a device is an admin write (device create and enroll). Without this, an
    // identity whose IdP minted an editor claim would enroll a TPM of its own, then register a first MFA
    // device from it: the seed's IdP-compromise defences, undone by one claim.
    if (!identity.builtin) await requireAdminActionMfa(ctx, call, identity);
    const existing = (await ctx.store.devices.byAssetTag(assetTag)).find((d) => d.os_type === osType);
    if (existing) {
      checkEnrollable(existing);
      return { deviceId: existing.id };
    }
    return { deviceId: randomUUID(), register: true };
  }

  function checkEnrollable(device: DeviceRow): void {
    if (device.locked) throw new KeyportError('ACCESS_DENIED', `Device ${device.asset_tag} is locked.`);
    if (device.enroll_status === 'enrolled') {
      throw new KeyportError(
        'ALREADY_EXISTS',
        `Device ${device.asset_tag} is already enrolled; a device admin can remove it and add it again.`,
      );
    }
  }
}
