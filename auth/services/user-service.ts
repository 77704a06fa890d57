// UserService: calls made with the certificate from login: status, and MFA devices (list, add, remove).
// Adding or removing a device needs an answered MANAGE_DEVICES challenge from an existing device.
import { randomUUID } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import { ChallengeScope, MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import type {
  MFAAuthenticateChallenge,
  MFADevice,
  MFARegisterChallenge,
} from '../../proto/gen/keyport/v1/mfa';
import type {
  AddMFADeviceRequest,
  CreateRegisterChallengeRequest,
  CreateUserChallengeRequest,
  DeleteMFADeviceRequest,
  DeleteMFADeviceResponse,
  ListMFADevicesResponse,
  PingResponse,
  UserStatus,
} from '../../proto/gen/keyport/v1/user';
import { MFA_CHALLENGE_TTL_MS } from '../context';
import type { ServiceContext } from '../context';
import { createAdminActionChallenge } from '../admin-mfa';
import { authenticate } from '../identity';
import {
  createMfaChallenge,
  newUserHandle,
  passwordlessDisabled,
  totpDeviceRow,
  verifyManageDevicesAnswer,
} from '../mfa';
import { createChallenge, newChallengeBytes, spendOrThrow } from '../challenges';
import type { PayloadOf } from '../challenges';
import { loadCap } from '../policy';
import type { CallContext } from '../rpc';
import { checkFirstMfaDevice } from '../device-trust/first-device';
import { ssoUserFields } from '../sso/requests';
import type { MfaDeviceRow } from '../storage/store';
import { newTotpEnrollment } from '../totp';
import { registrationOptions, relyingParty, verifyRegistration, webauthnDeviceRow } from '../webauthn';
import { totpSeedContext } from '../secrets';

const DEVICE_NAME = /^[\p{L}\p{N}._ -]{1,64}$/u;

function toMfaDevice(
  d: Pick<MfaDeviceRow, 'id' | 'name' | 'type' | 'added_ms' | 'last_used_ms' | 'passkey'>,
): MFADevice {
  return {
    id: d.id,
    name: d.name,
    type: d.type === 'totp' ? MFADeviceType.MFA_DEVICE_TYPE_TOTP : MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
    addedMs: d.added_ms,
    lastUsedMs: d.last_used_ms ?? 0,
    passkey: d.passkey === 1,
  };
}

export function userService(ctx: ServiceContext) {
  return {
    async ping(_request: unknown, call: CallContext): Promise<PingResponse> {
      await authenticate(ctx, call);
      return { serverTimeMs: ctx.now() };
    },

    async getStatus(_request: unknown, call: CallContext): Promise<UserStatus> {
      const identity = await authenticate(ctx, call);
      return {
        user: identity.user,
        roles: identity.roles,
        logins: identity.logins,
        validAfterMs: identity.validAfterMs,
        expiresMs: identity.expiresMs,
        mfaVerified: identity.mfaVerified,
        clusterName: ctx.clusterName,
        // SessionDevice has DeviceIdentity's fields, by design.
        device: identity.device ? { ...identity.device } : undefined,
      };
    },

    async listMfaDevices(_request: unknown, call: CallContext): Promise<ListMFADevicesResponse> {
      const identity = await authenticate(ctx, call);
      const devices = await ctx.store.listDevices(identity.user);
      return {
        devices: devices.map(toMfaDevice),
      };
    },

    async createAuthenticateChallenge(
      request: CreateUserChallengeRequest,
      call: CallContext,
    ): Promise<MFAAuthenticateChallenge> {
      const identity = await authenticate(ctx, call);
      if (request.scope === ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION) {
        return createAdminActionChallenge(ctx, identity, request.adminActions, call.clientAddr);
      }
      if (request.scope !== ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'With a certificate, only a MANAGE_DEVICES or ADMIN_ACTION challenge can be created here.',
          { fieldPath: 'scope' },
        );
      }
      const user = await ctx.store.getUser(identity.user);
      if (!user) throw new KeyportError('NOT_FOUND', `User "${identity.user}" no longer exists.`);
      const cap = await loadCap(ctx.store);
      return createMfaChallenge(ctx, user, ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES, cap);
    },

    async createRegisterChallenge(
      request: CreateRegisterChallengeRequest,
      call: CallContext,
    ): Promise<MFARegisterChallenge> {
      const identity = await authenticate(ctx, call);
      const cap = await loadCap(ctx.store);
      const type = request.deviceType;
      if (type !== MFADeviceType.MFA_DEVICE_TYPE_TOTP && type !== MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN) {
        throw new KeyportError('INVALID_ARGUMENT', 'The device type must be TOTP or WEBAUTHN.', {
          fieldPath: 'device_type',
        });
      }
      const webauthn = type === MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN;
      if (!webauthn && request.passwordless) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'Only a security key can be registered for passwordless.',
          {
            fieldPath: 'passwordless',
          },
        );
      }
      if (webauthn && request.passwordless && !cap.allowPasswordless) throw passwordlessDisabled();
      if (!webauthn && !cap.secondFactors.includes('otp')) {
        throw new KeyportError('PRECONDITION_FAILED', 'OTP devices are not an allowed second factor here.');
      }
      const rp = webauthn ? relyingParty(cap, ctx.clusterName) : undefined;
      // A first device (an SSO user's, after the IdP's login) has no existing one to answer for it: where
      // device trust is required, the session's trusted device does (device-trust/first-device.ts).
      const firstDevice = (await ctx.store.listDevices(identity.user)).length === 0;
      const userRow = firstDevice ? await ctx.store.getUser(identity.user) : undefined;
      if (userRow) {
        await checkFirstMfaDevice(ctx, userRow, { device: identity.device, clientAddr: call.clientAddr });
      }
      await verifyManageDevicesAnswer(ctx, identity.user, request.existingMfaResponse, call.clientAddr);

      let payload: PayloadOf<'REGISTER_DEVICE'>;
      let webauthnCreationOptionsJson = '';
      let totp: MFARegisterChallenge['totp'];
      if (rp) {
        const options = await registrationOptions({
          rp,
          userName: identity.user,
          userHandle: await ctx.store.webauthnUserHandle(identity.user, newUserHandle),
          challenge: newChallengeBytes(),
          existing: await ctx.store.listDevices(identity.user),
          passwordless: request.passwordless,
        });
        payload = {
          deviceType: 'webauthn',
          webauthnChallenge: options.challenge,
          passwordless: request.passwordless,
          ...(firstDevice ? { firstDevice } : {}),
        };
        webauthnCreationOptionsJson = JSON.stringify(options);
      } else {
        const enrollment = newTotpEnrollment(identity.user, ctx.clusterName);
        // The seed waits in the challenge row sealed, as it will be stored with the device.
        payload = {
          deviceType: 'totp',
          totpSecret: ctx.secrets.seal(enrollment.secret, totpSeedContext(identity.user)),
          ...(firstDevice ? { firstDevice } : {}),
        };
        totp = {
          secret: enrollment.secret,
          otpauthUri: enrollment.otpauthUri,
          digits: enrollment.digits,
          periodSeconds: enrollment.periodSeconds,
          algorithm: enrollment.algorithm,
        };
      }
      const { id, expiresMs } = await createChallenge(ctx, 'REGISTER_DEVICE', identity.user, payload, {
        ttlMs: MFA_CHALLENGE_TTL_MS,
      });
      const challenge: MFARegisterChallenge = {
        challengeId: id,
        type,
        totp,
        webauthnCreationOptionsJson,
        expiresMs,
      };
      return challenge;
    },

    async addMfaDevice(request: AddMFADeviceRequest, call: CallContext): Promise<MFADevice> {
      const identity = await authenticate(ctx, call);
      const newDevice = request.newDevice;
      const name = (newDevice?.deviceName ?? '').trim();
      if (!DEVICE_NAME.test(name)) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'A device name is 1 to 64 letters, digits, spaces, dots, dashes or underscores.',
          { fieldPath: 'new_device.device_name' },
        );
      }
      const userRow = await ctx.store.getUser(identity.user);
      const refused = async (error: unknown): Promise<never> => {
        await ctx.audit.record({
          type: 'mfa.add',
          actor: identity,
          clientAddr: call.clientAddr,
          success: false,
          message: error instanceof KeyportError ? error.message : 'internal error',
          fields: { device: name, ...ssoUserFields(userRow) },
        });
        throw error;
      };
      const existingDevices = await ctx.store.listDevices(identity.user);
      if (existingDevices.some((d) => d.name === name)) {
        await refused(
          new KeyportError(
            'ALREADY_EXISTS',
            `You already have an MFA device named "${name}"; pick another name.`,
            {
              fieldPath: 'new_device.device_name',
            },
          ),
        );
      }
      // Where device trust is required, a first MFA device is registered only from a trusted device.
      if (existingDevices.length === 0 && userRow) {
        await checkFirstMfaDevice(ctx, userRow, {
          device: identity.device,
          clientAddr: call.clientAddr,
          deviceName: name,
        });
      }
      const now = ctx.now();
      const row = await (async () => {
        const { payload } = await spendOrThrow(
          ctx,
          newDevice?.challengeId ?? '',
          ['REGISTER_DEVICE'],
          identity.user,
        );
        // A challenge issued without an MFA check (the user had no device) is void once they have one.
        if (payload.firstDevice && existingDevices.length > 0) {
          throw new KeyportError(
            'MFA_REQUIRED',
            'An MFA device was registered since this registration started; start again and prove that device.',
          );
        }
        const id = randomUUID();
        if (payload.deviceType === 'webauthn') {
          if (newDevice?.response?.$case !== 'webauthnJson') {
            throw new KeyportError(
              'INVALID_ARGUMENT',
              'This register challenge expects a security key response.',
              {
                fieldPath: 'new_device.webauthn_json',
              },
            );
          }
          const cap = await loadCap(ctx.store);
          const credential = await verifyRegistration({
            rp: relyingParty(cap, ctx.clusterName),
            responseJson: newDevice.response.value,
            expectedChallenge: payload.webauthnChallenge,
            passwordless: payload.passwordless,
          });
          if (await ctx.store.getDeviceByCredentialId(credential.credentialId)) {
            throw new KeyportError('ALREADY_EXISTS', 'This security key is already registered.');
          }
          return webauthnDeviceRow(credential, { id, user: identity.user, name, nowMs: now });
        }
        if (newDevice?.response?.$case !== 'totp') {
          throw new KeyportError('INVALID_ARGUMENT', 'This register challenge expects an OTP code.', {
            fieldPath: 'new_device.totp',
          });
        }
        return totpDeviceRow(ctx.secrets, {
          id,
          user: identity.user,
          name,
          sealedSeed: payload.totpSecret,
          code: newDevice.response.value.code,
          nowMs: now,
        });
      })().catch(refused);
      if (!(await ctx.store.insertDevice(row))) {
        await refused(
          new KeyportError(
            'ALREADY_EXISTS',
            `You already have an MFA device named "${name}"; pick another name.`,
            {
              fieldPath: 'new_device.device_name',
            },
          ),
        );
      }
      await ctx.audit.record({
        type: 'mfa.add',
        actor: identity,
        clientAddr: call.clientAddr,
        success: true,
        message: `MFA device "${name}" added`,
        fields: { device: name, type: row.type, passkey: row.passkey === 1 },
      });
      return toMfaDevice(row);
    },

    async deleteMfaDevice(
      request: DeleteMFADeviceRequest,
      call: CallContext,
    ): Promise<DeleteMFADeviceResponse> {
      const identity = await authenticate(ctx, call);
      const refused = async (error: unknown): Promise<never> => {
        await ctx.audit.record({
          type: 'mfa.delete',
          actor: identity,
          clientAddr: call.clientAddr,
          success: false,
          message: error instanceof KeyportError ? error.message : 'internal error',
          fields: { device: request.name },
        });
        throw error;
      };
      await verifyManageDevicesAnswer(ctx, identity.user, request.existingMfaResponse, call.clientAddr).catch(
        refused,
      );
      const cap = await loadCap(ctx.store);
      await ctx.store
        .transaction(async (tx) => {
          const devices = await tx.listDevices(identity.user);
          if (!devices.some((d) => d.name === request.name)) {
            throw new KeyportError('NOT_FOUND', `You have no MFA device named "${request.name}".`, {
              fieldPath: 'name',
            });
          }
          if (cap.secondFactorRequired && devices.length === 1) {
            throw new KeyportError(
              'PRECONDITION_FAILED',
              `"${request.name}" is your last MFA device and this cluster requires a second factor; add another device first.`,
            );
          }
          await tx.deleteDevice(identity.user, request.name);
          await ctx.audit.record(
            {
              type: 'mfa.delete',
              actor: identity,
              clientAddr: call.clientAddr,
              success: true,
              message: `MFA device "${request.name}" removed`,
              fields: { device: request.name },
            },
            tx,
          );
        })
        .catch(refused);
      return {};
    },
  };
}
