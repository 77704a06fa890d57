// Login in two round trips: CreateAuthenticateChallenge checks the password (with the lockout's reserved
// checks and rate limits) and returns an MFA challenge bound to user and scope; Login spends it, checks the
// second factor (or the passkey, for passwordless; login-answer.ts, shared with the web UI's login) and
// issues the session's certificates (certificates.ts). Each method reads top to bottom as its protocol's
// steps.
import { KeyportError } from '../../proto/errors';
import type {
  CreateAuthenticateChallengeRequest,
  LoginRequest,
  LoginResponse,
} from '../../proto/gen/keyport/v1/auth';
import { ChallengeScope } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import { verifyPassword } from '../passwords';
import { loadCap } from '../policy';
import {
  admitAttempt,
  clearFailures,
  clientIp,
  isLocked,
  limitAddress,
  limitAddressReadingCap,
  limitUserName,
  lockedError,
} from '../lockout';
import type { CallContext } from '../rpc';
import { issueSessionCertificates, sessionIdentityOf } from '../certificates';
import type { SessionKeys } from '../certificates';
import { concurrentUse, createMfaChallenge } from '../mfa';
import { createCountedPasswordlessChallenge, createPasswordlessChallenge } from '../passwordless';
import { finishDeviceLogin, startDeviceLogin } from '../device-trust/login';
import { perfSteps } from '../perf';
import { checkSessionKey, keyPolicyHint } from '../hardware-key/login';
import { requiredKeyPolicy } from '../../proto/resources/private-key-policy';
import { badCredentials, loginAnswers } from '../login-answer';
import { parseSessionKeys, parseTtlSeconds } from '../session-keys';

import type { ServiceContext } from '../context';

export function loginHandlers(ctx: ServiceContext) {
  const { auditLogin, spendAndVerify, rolesOf } = loginAnswers(ctx);

  return {
    async createAuthenticateChallenge(
      request: CreateAuthenticateChallengeRequest,
      call: CallContext,
    ): Promise<MFAAuthenticateChallenge> {
      // 1. This address's calls are limited, passwordless ones too (each stores a challenge); a passwordless
      //    one reads the cap in the same statement.
      const perf = perfSteps('server.createAuthenticateChallenge');
      if (request.scope === ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN && !request.device) {
        // Without a device part, one round trip: the count, the cap and the challenge together.
        const { challenge, cap } = await createCountedPasswordlessChallenge(ctx, call.clientAddr);
        perf.step('rate limit (address), load cap, create challenge');
        perf.end();
        return { ...challenge, deviceChallenge: undefined, ...keyPolicyHint(cap, []) };
      }
      if (request.scope === ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN) {
        const cap = await limitAddressReadingCap(ctx, call.clientAddr);
        perf.step('rate limit (address), load cap');
        // The device part: a nonce for an enrolled credential, or auto-enrollment (device-trust/login.ts).
        const device = await startDeviceLogin(ctx, cap, request.device, call.clientAddr);
        perf.step('device challenge');
        const challenge = await createPasswordlessChallenge(ctx, cap, device.payload);
        perf.step('create challenge');
        perf.end();
        // The user is unknown until the passkey answers: only the cap's policy can be told.
        return { ...challenge, deviceChallenge: device.challenge, ...keyPolicyHint(cap, []) };
      }
      const address = await limitAddress(ctx, call.clientAddr);
      perf.step('rate limit (address)');
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
      // The attempts on this name, from every address together.
      await limitUserName(ctx, request.user, call.clientAddr);
      perf.step('rate limit (name)');
      // 2. A reserved check for (name, address): waits while checks in flight would reach the limit, and
      //    refuses a locked-out address. A name of no user goes through the same steps and the same hash.
      const attempt = await admitAttempt(ctx, request.user, address).catch(async (error: unknown) => {
        await auditLogin(request.user, call.clientAddr, false, 'locked out or busy');
        throw error;
      });
      perf.step('lockout reservation');
      const user = await ctx.store.getUser(request.user);
      perf.step('read user');
      // 3. The password (a dummy hash for a name of no user, so both take the same time).
      if (!(await verifyPassword(user?.password_hash ?? null, request.password)) || !user) {
        await auditLogin(request.user, call.clientAddr, false, user ? 'wrong password' : 'unknown user');
        throw (await attempt.failed()) ?? badCredentials();
      }
      perf.step('argon2id verify');
      await attempt.passed();
      perf.step('settle reservation');
      // 4. An admin's lock is told only to someone who knows the password.
      if (isLocked(user, ctx.now())) {
        await auditLogin(user.name, call.clientAddr, false, 'user is locked');
        throw lockedError(user);
      }

      const cap = await loadCap(ctx.store);
      perf.step('load cap');
      const devices = await ctx.store.listDevices(user.name);
      perf.step('list MFA devices');
      if (cap.secondFactorRequired && devices.length === 0) {
        await auditLogin(user.name, call.clientAddr, false, 'no MFA device');
        throw new KeyportError(
          'MFA_REQUIRED',
          'This cluster requires a second factor, and this user has no MFA device; ask an admin to reset the user.',
        );
      }
      // 5. The device part: a nonce for an enrolled credential, or auto-enrollment (device-trust/login.ts).
      const device = await startDeviceLogin(ctx, cap, request.device, call.clientAddr);
      perf.step('device challenge');
      const challenge = await createMfaChallenge(
        ctx,
        user,
        ChallengeScope.CHALLENGE_SCOPE_LOGIN,
        cap,
        device.payload,
      );
      perf.step('create challenge');
      // 6. The private-key policy, so the client can prepare (and attest) a key on its card before Login.
      const keyPolicy = keyPolicyHint(cap, await rolesOf(user));
      perf.step('key policy');
      perf.end();
      // The login step takes the challenge id alone when the cluster requires no second factor.
      return {
        ...challenge,
        mfaRequired: cap.secondFactorRequired,
        deviceChallenge: device.challenge,
        ...keyPolicy,
      };
    },

    async login(request: LoginRequest, call: CallContext): Promise<LoginResponse> {
      const perf = perfSteps('server.login');
      // Counted against the address's limit when refused (countRefusal); a success was counted at step one.
      const address = clientIp(call.clientAddr);
      // 1. The request's own shape: the challenge id, a sane TTL and the keys to certify.
      const { challengeId, answer, ttlSeconds, keys } = parseLoginRequest(request);
      perf.step('parse keys');
      // 2–3. The challenge from step one, spent; the answer checked against the cap.
      const { challenge, cap, verified, refuse } = await spendAndVerify(challengeId, answer, call, {
        deferCounter: true,
      });
      perf.step('spend challenge, cap, second factor / passkey');
      // 4. The session key: the policy of this user's roles (read with the passkey, passwordless) and the
      //    cap, met by an attested card key. Checked before the device part, which may enroll a device: a
      //    refusal stores nothing but its audit.
      const roles = verified.roles ?? (await rolesOf(verified.user));
      const required = requiredKeyPolicy(cap, roles);
      let keyPolicy: ReturnType<typeof checkSessionKey>;
      try {
        keyPolicy = checkSessionKey({
          required,
          attestation: request.hardwareKeyAttestation,
          // Getters: a session key is made a KeyObject only for an attestation to be checked against.
          get sessionKey() {
            return keys.tls.key;
          },
          get sshKey() {
            return keys.ssh.key;
          },
          extraRoots: cap.hardware_key.attestation_roots,
          now: new Date(ctx.now()),
        });
      } catch (error) {
        if (!(error instanceof KeyportError)) throw error;
        return refuse(`private key policy "${required}": ${error.message}`, error);
      }
      perf.step('hardware key');
      // 5. The device: its quote over this challenge's nonce (and, auto-enrolling, the activated secret).
      const device = await finishDeviceLogin(
        ctx,
        challenge.payload.device,
        request.deviceResponse,
        verified.user.name,
        call.clientAddr,
      );
      perf.step('device quote');
      // 6. Certificates for the identity this login earned.
      const identity = await sessionIdentityOf(ctx, verified.user, {
        mfaVerified: verified.mfaVerified,
        requestedTtlSeconds: ttlSeconds,
        device,
        privateKeyPolicy: keyPolicy.policy,
        roles,
      });
      perf.step('roles');
      const issued = await issueSessionCertificates(ctx, identity, keys, perf);
      // 7. The login and the certificates are audited (one statement for both events; with a passkey's
      //    deferred counter, the same statement moves it, and a racing assertion that moved it first
      //    leaves this login refused with nothing written); then the address's failures are forgiven.
      const events = ctx.audit.rowsOf([
        {
          type: 'user.login',
          actor: identity.user,
          clientAddr: call.clientAddr,
          success: true,
          message: verified.method,
        },
        {
          type: 'cert.issued',
          actor: identity.user,
          clientAddr: call.clientAddr,
          success: true,
          message: `SSH and X.509 certificates valid until ${issued.notAfter.toISOString()}`,
          fields: {
            roles: identity.roles,
            logins: identity.logins,
            ttl_seconds: identity.ttlSeconds,
            mfa_verified: identity.mfaVerified,
            ...(identity.device ? { device_id: identity.device.deviceId } : {}),
            ...(identity.privateKeyPolicy ? { private_key_policy: identity.privateKeyPolicy } : {}),
            ...(keyPolicy.verified?.facts.serial !== undefined
              ? { hardware_key_serial: keyPolicy.verified.facts.serial }
              : {}),
          },
        },
      ]);
      if (!verified.counter) await ctx.store.appendAudit(events);
      else if (!(await ctx.store.login.acceptCounterWithAudit(verified.counter, ctx.now(), events))) {
        return refuse(`passwordless: ${concurrentUse().message}`, concurrentUse());
      }
      perf.step('audit');
      await clearFailures(ctx, identity.user, address, verified.failuresRecorded);
      perf.step('clear failures');
      perf.end();
      return {
        user: identity.user,
        roles: identity.roles,
        logins: identity.logins,
        sshCertificate: issued.sshCertificate,
        tlsCertificate: issued.tlsCertificatePem,
        expiresMs: issued.notAfter.getTime(),
        mfaVerified: identity.mfaVerified,
        clusterName: ctx.clusterName,
        // SessionDevice has DeviceIdentity's fields, by design.
        device: identity.device ? { ...identity.device } : undefined,
        deviceTrustMode: cap.device_trust.mode,
        deviceAutoEnroll: cap.device_trust.auto_enroll,
        privateKeyPolicy: identity.privateKeyPolicy ?? 'none',
      };
    },
  };
}

/** Login step two's request, checked before anything is spent: challenge id, TTL and the keys. */
function parseLoginRequest(request: LoginRequest): {
  challengeId: string;
  answer: MFAAuthenticateResponse['response'];
  ttlSeconds: number;
  keys: SessionKeys;
} {
  const response: MFAAuthenticateResponse | undefined = request.mfaResponse;
  if (!response?.challengeId) {
    throw new KeyportError('INVALID_ARGUMENT', 'The login needs the challenge id from step one.', {
      fieldPath: 'mfa_response.challenge_id',
    });
  }
  const ttlSeconds = parseTtlSeconds(request.ttlSeconds);
  const keys = parseSessionKeys(request.tlsPublicKey, request.sshPublicKey);
  return { challengeId: response.challengeId, answer: response.response, ttlSeconds, keys };
}
