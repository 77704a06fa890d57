// UserService: calls made with the certificate from login. MFA device management beyond listing arrives
// with security keys; until then those calls answer with a clear PRECONDITION_FAILED.
import { KeyportError } from '../../proto/errors';
import { MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import type { MFADevice } from '../../proto/gen/keyport/v1/mfa';
import type { ListMFADevicesResponse, PingResponse, UserStatus } from '../../proto/gen/keyport/v1/user';
import type { ServiceContext } from '../context';
import { authenticate } from '../identity';
import type { CallContext } from '../rpc';

const notYet = () =>
  new KeyportError(
    'PRECONDITION_FAILED',
    'Managing MFA devices needs security-key support, which this cluster lacks.',
  );

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
      };
    },

    async listMfaDevices(_request: unknown, call: CallContext): Promise<ListMFADevicesResponse> {
      const identity = await authenticate(ctx, call);
      const devices = await ctx.store.listDevices(identity.user);
      return {
        devices: devices.map((d): MFADevice => ({
          id: d.id,
          name: d.name,
          type:
            d.type === 'totp' ? MFADeviceType.MFA_DEVICE_TYPE_TOTP : MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
          addedMs: d.added_ms,
          lastUsedMs: d.last_used_ms ?? 0,
          passkey: d.passkey === 1,
        })),
      };
    },

    async createAuthenticateChallenge(_request: unknown, call: CallContext): Promise<never> {
      await authenticate(ctx, call);
      throw notYet();
    },
    async createRegisterChallenge(_request: unknown, call: CallContext): Promise<never> {
      await authenticate(ctx, call);
      throw notYet();
    },
    async addMfaDevice(_request: unknown, call: CallContext): Promise<never> {
      await authenticate(ctx, call);
      throw notYet();
    },
    async deleteMfaDevice(_request: unknown, call: CallContext): Promise<never> {
      await authenticate(ctx, call);
      throw notYet();
    },
  };
}
