// Login in two round trips: CreateAuthenticateChallenge checks the password (with the lockout's reserved
// checks and rate limits) and returns an MFA challenge bound to user and scope; Login spends it, checks the
// second factor (or the passkey, for passwordless) and issues the session's certificates
// (certificates.ts). Each method reads top to bottom as its protocol's steps.
import { KeyportError } from '../../proto/errors';
import type {
  CreateAuthenticateChallengeRequest,
  LoginRequest,
  LoginResponse,
} from '../../proto/gen/keyport/v1/auth';
import { ChallengeScope } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import { parseSshPublicKeyOf, sshPublicKeyOfClientKey } from '../ca/ssh';
import type { SshPublicKey } from '../ca/ssh';
import { parseClientPublicKey } from '../ca/spki';
import type { ClientPublicKey } from '../ca/spki';
import { verifyPassword } from '../passwords';
import { loadCap, loadRoles, rolesAmong } from '../policy';
import {
  admitAttempt,
  clearFailures,
  clientIp,
  isLocked,
  limitAddress,
  limitAddressReadingCap,
  limitUserName,
  lockedError,
  recordFailure,
} from '../lockout';
import type { CallContext } from '../rpc';
import { challengeRefusal, isPurpose, spendChallenge } from '../challenges';
import type { Challenge } from '../challenges';
import { issueSessionCertificates, sessionIdentityOf } from '../certificates';
import type { SessionKeys } from '../certificates';
import type { ClusterPolicy } from '../policy';
import type { UserRow } from '../storage/store';
import {
  createMfaChallenge,
  createPasswordlessChallenge,
  passwordlessDisabled,
  readPasskey,
  verifyTotpCode,
  verifyWebauthnAnswer,
} from '../mfa';
import { webauthnEnabled } from '../webauthn';
import { finishDeviceLogin, startDeviceLogin } from '../device-trust/login';
import { perfSteps } from '../perf';
import { checkSessionKey, keyPolicyHint } from '../hardware-key/login';
import { requiredKeyPolicy } from '../../proto/resources/private-key-policy';
import type { Role } from '../../proto/resources/schema';

import type { ServiceContext } from '../context';

const MAX_REQUESTED_TTL_SECONDS = 365 * 24 * 60 * 60;

const badCredentials = () => new KeyportError('ACCESS_DENIED', 'Invalid user name or password.');

export function loginHandlers(ctx: ServiceContext) {
  function auditLogin(actor: string, clientAddr: string, success: boolean, message: string): Promise<void> {
    return ctx.audit.record({ type: 'user.login', actor, clientAddr, success, message });
  }

  type Refuse = (reason: string, error: KeyportError) => Promise<never>;

  /**
   * Login (step two) counts against the address's limit only when it is refused, before anything is
   * written for it: a login that succeeds spends a challenge that its step one already counted, so its
   * own count would be a write that limits nothing.
   */
  async function countRefusal(clientAddr: string): Promise<void> {
    await limitAddress(ctx, clientAddr);
  }
  interface Verified {
    user: UserRow;
    mfaVerified: boolean;
    /** For the audit log: how the person proved who they are. */
    method: string;
    /** Whether failed sign-ins at this address are recorded, when read with the passkey. */
    failuresRecorded?: boolean;
    /** The user's roles that exist now, when read with the passkey. */
    roles?: Role[];
  }

  /** The user still exists and is not locked by an admin (`read`: the row as just read, if it was). */
  async function signInUser(name: string | null, refuse: Refuse, read?: UserRow): Promise<UserRow> {
    const user = read ?? (name ? await ctx.store.getUser(name) : undefined);
    if (!user) return refuse('user deleted during login', badCredentials());
    if (isLocked(user, ctx.now())) return refuse('user is locked', lockedError(user));
    return user;
  }

  /**
   * Passwordless: a passkey's assertion with user verification; its user handle names the user. The
   * passkey, its owner and the cap are read in one statement, before the cap is checked.
   */
  async function verifyPasskey(
    challenge: Challenge<'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN'>,
    answer: MFAAuthenticateResponse['response'],
    clientAddr: string,
    address: string,
    refuse: Refuse,
  ): Promise<Verified & { cap: ClusterPolicy }> {
    const passkey =
      answer?.$case === 'webauthnJson' ? await readPasskey(ctx, answer.value, address) : undefined;
    const cap = passkey?.cap ?? (await loadCap(ctx.store));
    if (!cap.allowPasswordless) return refuse('passwordless disabled', passwordlessDisabled());
    if (answer?.$case !== 'webauthnJson') {
      return refuse(
        'passwordless without a security key',
        new KeyportError('MFA_FAILED', 'Passwordless login needs the response of a security key.'),
      );
    }
    const verified = await verifyWebauthnAnswer(ctx, {
      challengeUser: null,
      webauthnChallenge: challenge.payload.webauthnChallenge,
      passwordless: true,
      json: answer.value,
      cap,
      clientAddr,
      ...(passkey ? { passkey } : {}),
    }).catch((error: unknown) =>
      error instanceof KeyportError ? refuse(`passwordless: ${error.message}`, error) : Promise.reject(error),
    );
    const user = await signInUser(verified.user, refuse, verified.owner);
    const found = passkey?.found;
    return {
      user,
      mfaVerified: true,
      method: 'passwordless',
      cap,
      ...(found ? { failuresRecorded: found.failedHere } : {}),
      ...(found?.ownerRoles ? { roles: rolesAmong(roleNamesOf(user), found.ownerRoles) } : {}),
    };
  }

  /**
   * After a password: an OTP code or a security key, as the cluster allows. A wrong one counts as a failure
   * for (name, address); a code spent a moment ago does not (it is a double submit, not a guess).
   */
  async function verifySecondFactor(
    challenge: Challenge<'CHALLENGE_SCOPE_LOGIN'>,
    answer: MFAAuthenticateResponse['response'],
    clientAddr: string,
    address: string,
    refuse: Refuse,
  ): Promise<Verified & { cap: ClusterPolicy }> {
    const cap = await loadCap(ctx.store);
    const user = await signInUser(challenge.user, refuse);
    if (answer?.$case === 'totp') {
      if (!cap.secondFactors.includes('otp')) {
        return refuse(
          'OTP not allowed',
          new KeyportError('MFA_FAILED', 'OTP is not an allowed second factor on this cluster.'),
        );
      }
      const outcome = await verifyTotpCode(ctx.store, ctx.secrets, user.name, answer.value.code, ctx.now());
      if (outcome !== 'ok') {
        await countRefusal(clientAddr);
        await auditLogin(
          user.name,
          clientAddr,
          false,
          outcome === 'replayed' ? 'OTP code reused' : 'wrong OTP code',
        );
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
      return { user, mfaVerified: true, method: 'password and OTP', cap };
    }
    if (answer?.$case === 'webauthnJson') {
      if (!webauthnEnabled(cap)) {
        return refuse(
          'security keys not allowed',
          new KeyportError('MFA_FAILED', 'Security keys are not an allowed second factor on this cluster.'),
        );
      }
      try {
        await verifyWebauthnAnswer(ctx, {
          challengeUser: user.name,
          webauthnChallenge: challenge.payload.webauthnChallenge,
          passwordless: false,
          json: answer.value,
          cap,
          clientAddr,
        });
      } catch (error) {
        if (!(error instanceof KeyportError)) throw error;
        if (error.code === 'INVALID_ARGUMENT') return refuse(`security key: ${error.message}`, error);
        await countRefusal(clientAddr);
        await auditLogin(user.name, clientAddr, false, `security key: ${error.message}`);
        throw (await recordFailure(ctx, user.name, address)) ?? error;
      }
      return { user, mfaVerified: true, method: 'password and security key', cap };
    }
    if (cap.secondFactorRequired) {
      return refuse(
        'no second factor given',
        new KeyportError('MFA_REQUIRED', 'This cluster requires a second factor: answer the MFA challenge.'),
      );
    }
    return { user, mfaVerified: false, method: 'password', cap };
  }

  /** The user's roles that exist now. */
  function rolesOf(user: UserRow): Promise<Role[]> {
    return loadRoles(ctx.store, roleNamesOf(user));
  }

  return {
    async createAuthenticateChallenge(
      request: CreateAuthenticateChallengeRequest,
      call: CallContext,
    ): Promise<MFAAuthenticateChallenge> {
      // 1. This address's calls are limited, passwordless ones too (each stores a challenge); a passwordless
      //    one reads the cap in the same statement.
      const perf = perfSteps('server.createAuthenticateChallenge');
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
      // 2. The challenge from step one: spent now, whatever happens next; a login challenge, not expired.
      const spent = await spendChallenge(ctx, challengeId, LOGIN_PURPOSES);
      perf.step('spend challenge');
      /** Every refusal from here on is audited, with the challenge's user when there is one. */
      const refuse = async (reason: string, error: KeyportError): Promise<never> => {
        await countRefusal(call.clientAddr);
        await auditLogin(
          (spent.ok ? spent.challenge.user : spent.user) ?? 'unknown',
          call.clientAddr,
          false,
          reason,
        );
        throw error;
      };
      if (!spent.ok) {
        return refuse(`${spent.reason} login challenge`, challengeRefusal(spent.reason, 'sign in again'));
      }
      const challenge = spent.challenge;
      // 3. The answer, checked against the cap: a passkey names the user (and is read with the cap);
      //    otherwise the second factor of the challenge's user.
      const { cap, ...verified } = isPurpose(challenge, 'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN')
        ? await verifyPasskey(challenge, answer, call.clientAddr, address, refuse)
        : await verifySecondFactor(
            challenge as Challenge<'CHALLENGE_SCOPE_LOGIN'>,
            answer,
            call.clientAddr,
            address,
            refuse,
          );
      perf.step('cap, second factor / passkey');
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
      // 7. The address's failures are forgiven; the login and the certificates are audited.
      await clearFailures(ctx, identity.user, address, verified.failuresRecorded);
      perf.step('clear failures');
      // One statement for both events.
      await ctx.audit.recordAll([
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
      perf.step('audit');
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

/** The role names in a user's spec. */
function roleNamesOf(user: UserRow): string[] {
  return (JSON.parse(user.spec_json) as { roles?: string[] }).roles ?? [];
}

const LOGIN_PURPOSES = ['CHALLENGE_SCOPE_LOGIN', 'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN'] as const;

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
  const tls = parseTlsPublicKey(request.tlsPublicKey);
  const tlsKeyAsSsh = sshPublicKeyOfClientKey(tls);
  const ssh = request.sshPublicKey ? parseSshPublicKeyField(request.sshPublicKey, tlsKeyAsSsh) : tlsKeyAsSsh;
  return { challengeId: response.challengeId, answer: response.response, ttlSeconds, keys: { ssh, tls } };
}

function parseTlsPublicKey(pem: string): ClientPublicKey {
  try {
    return parseClientPublicKey(pem);
  } catch {
    throw new KeyportError('INVALID_ARGUMENT', 'The public key must be a PEM ECDSA P-256 or Ed25519 key.', {
      fieldPath: 'tls_public_key',
    });
  }
}

/** The SSH key line; the TLS key's own point is not imported a second time. */
function parseSshPublicKeyField(line: string, tlsKeyAsSsh: SshPublicKey) {
  try {
    return parseSshPublicKeyOf(line, tlsKeyAsSsh);
  } catch (error) {
    throw new KeyportError('INVALID_ARGUMENT', `The SSH public key is invalid: ${(error as Error).message}`, {
      fieldPath: 'ssh_public_key',
    });
  }
}
