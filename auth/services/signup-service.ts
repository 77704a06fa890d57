// Signup, as a person meets it: StartSignup shows what to register (an OTP secret, the same one for every
// call with a token until it is spent, or WebAuthn creation options); CompleteSignup spends the token,
// sets the password and registers the first MFA device, all or nothing. A refused step leaves the token
// unspent and is audited.
import { randomUUID } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import type {
  CompleteSignupRequest,
  CompleteSignupResponse,
  StartSignupRequest,
  StartSignupResponse,
} from '../../proto/gen/keyport/v1/auth';
import { MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import { checkPasswordPolicy, hashPassword } from '../passwords';
import { loadCap } from '../policy';
import { limitAddress } from '../lockout';
import type { CallContext } from '../rpc';
import {
  expiredSignupToken,
  hashToken,
  invalidSignupToken,
  usableSignupToken as usableTokenRow,
} from '../tokens';
import { newTotpSecret, totpEnrollment } from '../totp';
import { MFA_CHALLENGE_TTL_MS } from '../context';
import { newUserHandle, passwordlessDisabled, totpDeviceRow } from '../mfa';
import { createChallenge, newChallengeBytes, spendOrThrow } from '../challenges';
import { totpSeedContext } from '../secrets';
import { registrationOptions, relyingParty, verifyRegistration, webauthnDeviceRow } from '../webauthn';
import type { NewCredential } from '../webauthn';
import type { DeviceChallenge } from '../../proto/gen/keyport/v1/device';
import { firstDeviceChallenge, firstDeviceDecision, verifyFirstDevice } from '../device-trust/first-device';

import type { ServiceContext } from '../context';

export function signupHandlers(ctx: ServiceContext) {
  /** Audits a refused signup step (the token stays unspent) and rethrows the refusal. */
  async function signupRefused(tokenHash: string, clientAddr: string, error: unknown): Promise<never> {
    const token = await ctx.store.getSignupToken(tokenHash);
    await ctx.audit.record({
      type: 'user.signup',
      actor: token?.user ?? 'unknown',
      clientAddr,
      success: false,
      message: error instanceof KeyportError ? error.message : 'internal error',
    });
    throw error;
  }

  const usableSignupToken = (tokenHash: string) => usableTokenRow(ctx.store, tokenHash, ctx.now());

  /** The device part of StartSignup: nothing, or a nonce for the trusted device the client names. */
  async function deviceChallengeForSignup(
    userName: string,
    credentialId: string,
    notAfterMs: number,
  ): Promise<{ deviceChallenge: DeviceChallenge | undefined; deviceChallengeId: string }> {
    const cap = await loadCap(ctx.store);
    const user = await ctx.store.getUser(userName);
    if (!user || (await firstDeviceDecision(ctx, cap, user)).allowed) {
      return { deviceChallenge: undefined, deviceChallengeId: '' };
    }
    const { challengeId, challenge } = await firstDeviceChallenge(ctx, userName, credentialId, notAfterMs);
    return { deviceChallenge: challenge, deviceChallengeId: challengeId };
  }

  return {
    async startSignup(request: StartSignupRequest, call: CallContext): Promise<StartSignupResponse> {
      await limitAddress(ctx, call.clientAddr);
      const tokenHash = hashToken(request.token);
      const row = await usableSignupToken(tokenHash).catch((error: unknown) =>
        signupRefused(tokenHash, call.clientAddr, error),
      );
      const cap = await loadCap(ctx.store);
      if (!cap.secondFactorRequired)
        return {
          user: row.user,
          registerChallenge: undefined,
          tokenExpiresMs: row.expires_ms,
          deviceChallengeId: '',
        };
      // Where device trust is required, the first MFA device is registered only from a trusted device.
      const device = await deviceChallengeForSignup(
        row.user,
        request.deviceCredentialId,
        row.expires_ms,
      ).catch((error: unknown) => signupRefused(tokenHash, call.clientAddr, error));
      const wantsWebauthn =
        request.deviceType === MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN || !cap.secondFactors.includes('otp');
      if (request.passwordless && !wantsWebauthn) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'Only a security key can be registered for passwordless.',
          {
            fieldPath: 'passwordless',
          },
        );
      }
      if (request.passwordless && !cap.allowPasswordless) throw passwordlessDisabled();
      if (wantsWebauthn) {
        const rp = relyingParty(cap, ctx.clusterName);
        const handle = await ctx.store.webauthnUserHandle(row.user, newUserHandle);
        const options = await registrationOptions({
          rp,
          userName: row.user,
          userHandle: handle,
          challenge: newChallengeBytes(),
          existing: await ctx.store.listDevices(row.user),
          passwordless: request.passwordless,
        });
        // The first key's registration lives as long as the token, 5 minutes at most.
        const { id, expiresMs } = await createChallenge(
          ctx,
          'SIGNUP_REGISTER_DEVICE',
          row.user,
          {
            deviceType: 'webauthn',
            webauthnChallenge: options.challenge,
            passwordless: request.passwordless,
            tokenHash: row.token_hash,
          },
          { ttlMs: MFA_CHALLENGE_TTL_MS, notAfterMs: row.expires_ms },
        );
        return {
          user: row.user,
          tokenExpiresMs: row.expires_ms,
          ...device,
          registerChallenge: {
            challengeId: id,
            type: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
            totp: undefined,
            webauthnCreationOptionsJson: JSON.stringify(options),
            expiresMs,
          },
        };
      }
      // The same secret for every StartSignup of this token until it is spent: a second screen (a double
      // submit, a retry) must not replace the secret the first one showed.
      const sealed = await ctx.store.pendingTotpSecret(
        row.token_hash,
        ctx.secrets.seal(newTotpSecret(), totpSeedContext(row.user)),
      );
      if (!sealed) throw invalidSignupToken();
      const secret = ctx.secrets.open(sealed, totpSeedContext(row.user));
      const enrollment = totpEnrollment(row.user, ctx.clusterName, secret);
      return {
        user: row.user,
        tokenExpiresMs: row.expires_ms,
        ...device,
        registerChallenge: {
          challengeId: '',
          type: MFADeviceType.MFA_DEVICE_TYPE_TOTP,
          totp: {
            secret: enrollment.secret,
            otpauthUri: enrollment.otpauthUri,
            digits: enrollment.digits,
            periodSeconds: enrollment.periodSeconds,
            algorithm: enrollment.algorithm,
          },
          webauthnCreationOptionsJson: '',
          expiresMs: row.expires_ms,
        },
      };
    },

    async completeSignup(request: CompleteSignupRequest, call: CallContext): Promise<CompleteSignupResponse> {
      await limitAddress(ctx, call.clientAddr);
      const tokenHash = hashToken(request.token);
      const refused = (error: unknown) => signupRefused(tokenHash, call.clientAddr, error);
      // Cheap checks first: a bad token or a short password costs no password hash.
      await usableSignupToken(tokenHash).catch(refused);
      try {
        checkPasswordPolicy(request.password);
      } catch (error) {
        await refused(error);
      }
      const passwordHash = await hashPassword(request.password);
      const cap = await loadCap(ctx.store);
      // A trusted device's quote, where device trust is required for the first MFA device.
      if (cap.secondFactorRequired) {
        await (async () => {
          const token = await usableSignupToken(tokenHash);
          const user = await ctx.store.getUser(token.user);
          if (user && !(await firstDeviceDecision(ctx, cap, user)).allowed) {
            await verifyFirstDevice(ctx, token.user, request.device);
          }
        })().catch(refused);
      }
      let credential: NewCredential | undefined;
      if (cap.secondFactorRequired && request.newDevice?.response?.$case === 'webauthnJson') {
        const json = request.newDevice.response.value;
        credential = await (async () => {
          const token = await usableSignupToken(tokenHash);
          const { payload } = await spendOrThrow(
            ctx,
            request.newDevice?.challengeId ?? '',
            ['SIGNUP_REGISTER_DEVICE'],
            token.user,
          );
          if (payload.tokenHash !== tokenHash) {
            throw new KeyportError('ACCESS_DENIED', 'This challenge belongs to another signup.');
          }
          return verifyRegistration({
            rp: relyingParty(cap, ctx.clusterName),
            responseJson: json,
            expectedChallenge: payload.webauthnChallenge,
            passwordless: payload.passwordless,
          });
        })().catch(refused);
      }
      const user = await ctx.store
        .transaction(async (tx) => {
          const now = ctx.now();
          const token = await tx.consumeSignupToken(tokenHash, now);
          if (!token) {
            const row = await tx.getSignupToken(tokenHash);
            throw row && !row.used && row.expires_ms <= now ? expiredSignupToken() : invalidSignupToken();
          }
          if (!(await tx.getUser(token.user))) throw invalidSignupToken();
          if (cap.secondFactorRequired) {
            const device = request.newDevice;
            if (credential) {
              if (await tx.getDeviceByCredentialId(credential.credentialId)) {
                throw new KeyportError('ALREADY_EXISTS', 'This security key is already registered.');
              }
              await tx.insertDevice(
                webauthnDeviceRow(credential, {
                  id: randomUUID(),
                  user: token.user,
                  name: device?.deviceName || 'security-key',
                  nowMs: now,
                }),
              );
            } else {
              if (device?.response?.$case !== 'totp') {
                throw new KeyportError(
                  'MFA_REQUIRED',
                  'This cluster requires a second factor: register an OTP device or a security key.',
                );
              }
              if (!token.pending_totp_secret) {
                throw new KeyportError(
                  'PRECONDITION_FAILED',
                  'Start the signup first, to get the OTP secret.',
                );
              }
              await tx.insertDevice(
                totpDeviceRow(ctx.secrets, {
                  id: randomUUID(),
                  user: token.user,
                  name: device.deviceName || 'otp',
                  sealedSeed: token.pending_totp_secret,
                  code: device.response.value.code,
                  nowMs: now,
                }),
              );
            }
          }
          await tx.setPasswordHash(token.user, passwordHash, now);
          await tx.clearPendingTotpSecret(tokenHash);
          await ctx.audit.record(
            {
              type: 'user.signup',
              actor: token.user,
              clientAddr: call.clientAddr,
              success: true,
              message: 'signed up',
            },
            tx,
          );
          return token.user;
        })
        // The transaction rolled back, so the token is unspent; the refusal is still audited.
        .catch(refused);
      return { user };
    },
  };
}
