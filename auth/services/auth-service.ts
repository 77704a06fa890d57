// AuthService: cluster discovery, signup and the two-round-trip login. Needs no client certificate.
import { createPublicKey, randomUUID } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import type {
  ClusterInfo,
  CompleteSignupRequest,
  CompleteSignupResponse,
  CreateAuthenticateChallengeRequest,
  LoginRequest,
  LoginResponse,
  StartSignupRequest,
  StartSignupResponse,
} from '../../proto/gen/keyport/v1/auth';
import { ChallengeScope, MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import { parseSshPublicKey, signSshUserCertificate, sshPublicKeyFromKeyObject } from '../ca/ssh';
import { issueClientCertificate } from '../ca/x509';
import { checkPasswordPolicy, hashPassword, verifyPassword } from '../passwords';
import { loadCap, loadRoles, loginsFor, sessionTtlSeconds } from '../policy';
import {
  admitAttempt,
  clearFailures,
  clientIp,
  isLocked,
  lockedError,
  rateLimit,
  recordFailure,
} from '../lockout';
import type { CallContext } from '../rpc';
import {
  expiredSignupToken,
  hashToken,
  invalidSignupToken,
  usableSignupToken as usableTokenRow,
} from '../tokens';
import { newTotpSecret, totpEnrollment, totpStepOf } from '../totp';
import { CLIENT_CERT_BACKDATE_MS, MFA_CHALLENGE_TTL_MS } from '../context';
import {
  createMfaChallenge,
  createPasswordlessChallenge,
  newChallengeBytes,
  newUserHandle,
  passwordlessDisabled,
  payloadOf,
  SIGNUP_REGISTER_SCOPE,
  spendChallenge,
  verifyTotpCode,
  verifyWebauthnAnswer,
} from '../mfa';
import { totpSeedContext } from '../secrets';
import type { ChallengePayload } from '../mfa';
import {
  registrationOptions,
  relyingParty,
  verifyRegistration,
  webauthnDeviceRow,
  webauthnEnabled,
} from '../webauthn';
import type { NewCredential } from '../webauthn';

import type { ServiceContext } from '../context';

const MAX_REQUESTED_TTL_SECONDS = 365 * 24 * 60 * 60;

const badCredentials = () => new KeyportError('ACCESS_DENIED', 'Invalid user name or password.');

export function authService(ctx: ServiceContext) {
  function auditLogin(actor: string, clientAddr: string, success: boolean, message: string): Promise<void> {
    return ctx.audit.record({ type: 'user.login', actor, clientAddr, success, message });
  }

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

  return {
    async getClusterInfo(): Promise<ClusterInfo> {
      const cap = await loadCap(ctx.store);
      return {
        clusterName: ctx.clusterName,
        version: ctx.version,
        publicAddr: ctx.publicAddr,
        caPin: ctx.caPin,
        secondFactors: cap.secondFactors,
        allowPasswordless: cap.allowPasswordless,
        connectorName: cap.connectorName ?? '',
        webauthnRpId: cap.webauthnRpId ?? '',
      };
    },

    async startSignup(request: StartSignupRequest, call: CallContext): Promise<StartSignupResponse> {
      await rateLimit(
        ctx,
        `addr:${clientIp(call.clientAddr)}`,
        ctx.rateLimit.perAddress,
        call.clientAddr,
        'requests from this address',
      );
      const tokenHash = hashToken(request.token);
      const row = await usableSignupToken(tokenHash).catch((error: unknown) =>
        signupRefused(tokenHash, call.clientAddr, error),
      );
      const cap = await loadCap(ctx.store);
      if (!cap.secondFactorRequired)
        return { user: row.user, registerChallenge: undefined, tokenExpiresMs: row.expires_ms };
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
        const id = Buffer.from(newChallengeBytes()).toString('base64url');
        const now = ctx.now();
        const expiresMs = Math.min(row.expires_ms, now + MFA_CHALLENGE_TTL_MS);
        const payload: ChallengePayload = {
          deviceType: 'webauthn',
          webauthnChallenge: options.challenge,
          passwordless: request.passwordless,
          tokenHash: row.token_hash,
        };
        await ctx.store.insertChallenge({
          id,
          user: row.user,
          scope: SIGNUP_REGISTER_SCOPE,
          payload_json: JSON.stringify(payload),
          created_ms: now,
          expires_ms: expiresMs,
          used: 0,
        });
        return {
          user: row.user,
          tokenExpiresMs: row.expires_ms,
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
      await rateLimit(
        ctx,
        `addr:${clientIp(call.clientAddr)}`,
        ctx.rateLimit.perAddress,
        call.clientAddr,
        'requests from this address',
      );
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
      let credential: NewCredential | undefined;
      if (cap.secondFactorRequired && request.newDevice?.response?.$case === 'webauthnJson') {
        const json = request.newDevice.response.value;
        credential = await (async () => {
          const token = await usableSignupToken(tokenHash);
          const { payload } = await spendChallenge(
            ctx.store,
            request.newDevice?.challengeId ?? '',
            SIGNUP_REGISTER_SCOPE,
            token.user,
            ctx.now(),
          );
          if (payload.tokenHash !== tokenHash || !payload.webauthnChallenge) {
            throw new KeyportError('ACCESS_DENIED', 'This challenge belongs to another signup.');
          }
          return verifyRegistration({
            rp: relyingParty(cap, ctx.clusterName),
            responseJson: json,
            expectedChallenge: payload.webauthnChallenge,
            passwordless: payload.passwordless === true,
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
              const step = totpStepOf(
                ctx.secrets.open(token.pending_totp_secret, totpSeedContext(token.user)),
                device.response.value.code,
                now,
              );
              if (step === undefined) {
                throw new KeyportError(
                  'MFA_FAILED',
                  'The OTP code is wrong; check the time on your device and try again.',
                );
              }
              await tx.insertDevice({
                id: randomUUID(),
                user: token.user,
                name: device.deviceName || 'otp',
                type: 'totp',
                added_ms: now,
                last_used_ms: now,
                totp_secret: token.pending_totp_secret,
                totp_last_step: step,
                passkey: 0,
              });
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

    async createAuthenticateChallenge(
      request: CreateAuthenticateChallengeRequest,
      call: CallContext,
    ): Promise<MFAAuthenticateChallenge> {
      if (request.scope === ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN) {
        return createPasswordlessChallenge(ctx, await loadCap(ctx.store));
      }
      if (request.scope !== ChallengeScope.CHALLENGE_SCOPE_LOGIN) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'Without a certificate, only a LOGIN challenge can be created.',
          {
            fieldPath: 'scope',
          },
        );
      }
      if (!request.user)
        throw new KeyportError('INVALID_ARGUMENT', 'A user name is required.', { fieldPath: 'user' });
      // 1. Rate limits: this address's calls, and the attempts on this name from everywhere.
      const address = clientIp(call.clientAddr);
      await rateLimit(
        ctx,
        `addr:${address}`,
        ctx.rateLimit.perAddress,
        call.clientAddr,
        'requests from this address',
      );
      await rateLimit(
        ctx,
        `user:${request.user}`,
        ctx.rateLimit.perUser,
        call.clientAddr,
        'sign-in attempts for this account',
      );
      // 2. A reserved check for (name, address): waits while checks in flight would reach the limit, and
      //    refuses a locked-out address. A name of no user goes through the same steps and the same hash.
      const attempt = await admitAttempt(ctx, request.user, address).catch(async (error: unknown) => {
        await auditLogin(request.user, call.clientAddr, false, 'locked out or busy');
        throw error;
      });
      const user = await ctx.store.getUser(request.user);
      // 3. The password (a dummy hash for a name of no user, so both take the same time).
      if (!(await verifyPassword(user?.password_hash ?? null, request.password)) || !user) {
        await auditLogin(request.user, call.clientAddr, false, user ? 'wrong password' : 'unknown user');
        throw (await attempt.failed()) ?? badCredentials();
      }
      await attempt.passed();
      // 4. An admin's lock is told only to someone who knows the password.
      if (isLocked(user, ctx.now())) {
        await auditLogin(user.name, call.clientAddr, false, 'user is locked');
        throw lockedError(user);
      }

      const cap = await loadCap(ctx.store);
      const devices = await ctx.store.listDevices(user.name);
      if (cap.secondFactorRequired && devices.length === 0) {
        await auditLogin(user.name, call.clientAddr, false, 'no MFA device');
        throw new KeyportError(
          'MFA_REQUIRED',
          'This cluster requires a second factor, and this user has no MFA device; ask an admin to reset the user.',
        );
      }
      const challenge = await createMfaChallenge(ctx, user, ChallengeScope.CHALLENGE_SCOPE_LOGIN, cap);
      // The login step takes the challenge id alone when the cluster requires no second factor.
      return { ...challenge, mfaRequired: cap.secondFactorRequired };
    },

    async login(request: LoginRequest, call: CallContext): Promise<LoginResponse> {
      const address = clientIp(call.clientAddr);
      await rateLimit(
        ctx,
        `addr:${address}`,
        ctx.rateLimit.perAddress,
        call.clientAddr,
        'requests from this address',
      );
      const response: MFAAuthenticateResponse | undefined = request.mfaResponse;
      if (!response?.challengeId) {
        throw new KeyportError('INVALID_ARGUMENT', 'The login needs the challenge id from step one.', {
          fieldPath: 'mfa_response.challenge_id',
        });
      }
      const ttlSeconds = Number(request.ttlSeconds);
      if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > MAX_REQUESTED_TTL_SECONDS) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'The requested session TTL must be between 1 second and 1 year.',
          {
            fieldPath: 'ttl_seconds',
          },
        );
      }
      const tlsKey = parseTlsPublicKey(request.tlsPublicKey);
      const sshKey = request.sshPublicKey
        ? parseSshPublicKeyField(request.sshPublicKey)
        : sshPublicKeyFromKeyObject(tlsKey);

      const challenge = await ctx.store.consumeChallenge(response.challengeId);
      /** Every refusal from here on is audited, with the challenge's user when there is one. */
      const refuse = async (reason: string, error: KeyportError): Promise<never> => {
        await auditLogin(challenge?.user ?? 'unknown', call.clientAddr, false, reason);
        throw error;
      };
      if (!challenge) {
        return refuse(
          'unknown or spent login challenge',
          new KeyportError(
            'ACCESS_DENIED',
            'The login challenge is unknown or was already used; sign in again.',
          ),
        );
      }
      const passwordless =
        challenge.scope === ChallengeScope[ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN];
      if (
        !passwordless &&
        (challenge.scope !== ChallengeScope[ChallengeScope.CHALLENGE_SCOPE_LOGIN] || !challenge.user)
      ) {
        return refuse(
          'challenge of another scope',
          new KeyportError('ACCESS_DENIED', 'This challenge was issued for another purpose than login.'),
        );
      }
      if (challenge.expires_ms <= ctx.now()) {
        return refuse(
          'expired login challenge',
          new KeyportError('EXPIRED', 'The login challenge expired; sign in again.'),
        );
      }
      const cap = await loadCap(ctx.store);
      let userName = challenge.user;
      let method = 'password';
      if (passwordless) {
        if (!cap.allowPasswordless) return refuse('passwordless disabled', passwordlessDisabled());
        if (response.response?.$case !== 'webauthnJson') {
          return refuse(
            'passwordless without a security key',
            new KeyportError('MFA_FAILED', 'Passwordless login needs the response of a security key.'),
          );
        }
        const json = response.response.value;
        const verified = await verifyWebauthnAnswer(ctx, {
          row: challenge,
          payload: payloadOf(challenge),
          json,
          cap,
          clientAddr: call.clientAddr,
        }).catch((error: unknown) =>
          error instanceof KeyportError
            ? refuse(`passwordless: ${error.message}`, error)
            : Promise.reject(error),
        );
        userName = verified.user;
        method = 'passwordless';
      }
      const user = userName ? await ctx.store.getUser(userName) : undefined;
      if (!user) return refuse('user deleted during login', badCredentials());
      if (isLocked(user, ctx.now())) return refuse('user is locked', lockedError(user));

      let mfaVerified = passwordless;
      if (passwordless) {
        // verified above
      } else if (response.response?.$case === 'totp') {
        if (!cap.secondFactors.includes('otp')) {
          return refuse(
            'OTP not allowed',
            new KeyportError('MFA_FAILED', 'OTP is not an allowed second factor on this cluster.'),
          );
        }
        const outcome = await verifyTotpCode(
          ctx.store,
          ctx.secrets,
          user.name,
          response.response.value.code,
          ctx.now(),
        );
        if (outcome !== 'ok') {
          const reason = outcome === 'replayed' ? 'OTP code reused' : 'wrong OTP code';
          await auditLogin(user.name, call.clientAddr, false, reason);
          // A code just spent, sent again (a double submit), came from someone who has it: not a guess.
          const lock = outcome === 'wrong' ? await recordFailure(ctx, user.name, address) : undefined;
          throw (
            lock ??
            new KeyportError(
              'MFA_FAILED',
              outcome === 'replayed'
                ? 'This OTP code was already used; wait for the next code and sign in again.'
                : 'The OTP code is wrong; sign in again with the current code.',
            )
          );
        }
        mfaVerified = true;
        method = 'password and OTP';
      } else if (response.response?.$case === 'webauthnJson') {
        if (!webauthnEnabled(cap)) {
          return refuse(
            'security keys not allowed',
            new KeyportError('MFA_FAILED', 'Security keys are not an allowed second factor on this cluster.'),
          );
        }
        try {
          await verifyWebauthnAnswer(ctx, {
            row: challenge,
            payload: payloadOf(challenge),
            json: response.response.value,
            cap,
            clientAddr: call.clientAddr,
          });
        } catch (error) {
          if (!(error instanceof KeyportError)) throw error;
          if (error.code === 'INVALID_ARGUMENT') return refuse(`security key: ${error.message}`, error);
          await auditLogin(user.name, call.clientAddr, false, `security key: ${error.message}`);
          const lock = await recordFailure(ctx, user.name, address);
          throw lock ?? error;
        }
        mfaVerified = true;
        method = 'password and security key';
      } else if (cap.secondFactorRequired) {
        return refuse(
          'no second factor given',
          new KeyportError(
            'MFA_REQUIRED',
            'This cluster requires a second factor: answer the MFA challenge.',
          ),
        );
      }

      const roles = await loadRoles(ctx.store, JSON.parse(user.spec_json).roles ?? []);
      const traits = JSON.parse(user.spec_json).traits ?? {};
      const logins = loginsFor(roles, traits);
      const sessionSeconds = sessionTtlSeconds(roles, ttlSeconds || undefined);
      const now = ctx.now();
      const notBefore = new Date(now - CLIENT_CERT_BACKDATE_MS);
      const notAfter = new Date(now + sessionSeconds * 1000);
      const roleNames = roles.map((r) => r.metadata.name);
      const sshCertificate = signSshUserCertificate({
        ca: ctx.authorities.ssh,
        publicKey: sshKey,
        keyId: user.name,
        principals: logins.length > 0 ? logins : [`-keyport-nologin-${randomUUID()}`],
        validAfter: notBefore,
        validBefore: notAfter,
        extensions: {
          'keyport-roles@keyport.dev': JSON.stringify(roleNames),
          ...(mfaVerified ? { 'keyport-mfa-verified@keyport.dev': '' } : {}),
        },
      });
      const tlsCertificate = await issueClientCertificate({
        authorities: ctx.authorities,
        publicKeyPem: tlsKey.export({ type: 'spki', format: 'pem' }).toString(),
        user: user.name,
        roles: roleNames,
        logins,
        mfaVerified,
        notBefore,
        notAfter,
      });
      await clearFailures(ctx, user.name, address);
      await ctx.audit.record({
        type: 'user.login',
        actor: user.name,
        clientAddr: call.clientAddr,
        success: true,
        message: method,
      });
      await ctx.audit.record({
        type: 'cert.issued',
        actor: user.name,
        clientAddr: call.clientAddr,
        success: true,
        message: `SSH and X.509 certificates valid until ${notAfter.toISOString()}`,
        fields: { roles: roleNames, logins, ttl_seconds: sessionSeconds, mfa_verified: mfaVerified },
      });
      return {
        user: user.name,
        roles: roleNames,
        logins,
        sshCertificate,
        tlsCertificate: tlsCertificate.certPem,
        expiresMs: notAfter.getTime(),
        mfaVerified,
        clusterName: ctx.clusterName,
      };
    },
  };
}

function parseTlsPublicKey(pem: string) {
  try {
    const key = createPublicKey(pem);
    const type = key.asymmetricKeyType;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (type === 'ed25519' || (type === 'ec' && curve === 'prime256v1')) return key;
  } catch {
    // reported below
  }
  throw new KeyportError('INVALID_ARGUMENT', 'The public key must be a PEM ECDSA P-256 or Ed25519 key.', {
    fieldPath: 'tls_public_key',
  });
}

function parseSshPublicKeyField(line: string) {
  try {
    return parseSshPublicKey(line);
  } catch (error) {
    throw new KeyportError('INVALID_ARGUMENT', `The SSH public key is invalid: ${(error as Error).message}`, {
      fieldPath: 'ssh_public_key',
    });
  }
}
