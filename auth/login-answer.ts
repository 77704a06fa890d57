// Login step two's checks, shared by both transports (the gRPC login service and the web UI's): the
// challenge from step one spent, then the answer (a second factor after a password, or a passkey) checked
// against the cap, with every refusal counted against the address, audited as `user.login` and, for a
// wrong answer, counted toward the lockout. Each transport then ends the login its own way: certificates
// (services/login-service.ts) or a web session (services/web-login-service.ts).
import { KeyportError } from '../proto/errors';
import type { MFAAuthenticateResponse } from '../proto/gen/keyport/v1/mfa';
import type { Role } from '../proto/resources/schema';
import { challengeRefusal, checkSpent, isPurpose } from './challenges';
import type { Challenge } from './challenges';
import type { ServiceContext } from './context';
import { clientIp, isLocked, limitAddress, lockedError, recordFailure } from './lockout';
import { passwordlessDisabled, verifyTotpCode, verifyWebauthnAnswer } from './mfa';
import { spendReadingPasskey } from './passwordless';
import type { PasskeyRead } from './passwordless';
import { loadCap, loadRoles, rolesAmong } from './policy';
import type { ClusterPolicy } from './policy';
import type { CallContext } from './rpc';
import type { CounterAdvance } from './storage/login';
import type { UserRow } from './storage/store';
import { webauthnEnabled } from './webauthn';

export const badCredentials = () => new KeyportError('ACCESS_DENIED', 'Invalid user name or password.');

export const LOGIN_PURPOSES = ['CHALLENGE_SCOPE_LOGIN', 'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN'] as const;

/** The role names in a user's spec. */
export function roleNamesOf(user: UserRow): string[] {
  return (JSON.parse(user.spec_json) as { roles?: string[] }).roles ?? [];
}

/** Audits the refusal and throws its error. */
export type Refuse = (reason: string, error: KeyportError) => Promise<never>;

interface Verified {
  user: UserRow;
  mfaVerified: boolean;
  /** For the audit log: how the person proved who they are. */
  method: string;
  /** Whether failed sign-ins at this address are recorded, when read with the passkey. */
  failuresRecorded?: boolean;
  /** The user's roles that exist now, when read with the passkey. */
  roles?: Role[];
  /** The passkey's new sign counter, when the caller writes it (deferCounter): with the login's audit. */
  counter?: CounterAdvance;
}

/** How step two's caller ends the login. */
export interface SpendOptions {
  /** The web UI's exact WebAuthn origins; none for gRPC. */
  origins?: readonly string[];
  /**
   * A passwordless login returns its passkey's new sign counter instead of writing it, when nothing else
   * is written before the login's audit (no device part): the caller writes both in one statement
   * (storage/login.ts acceptCounterWithAudit) and refuses the login if the counter did not move.
   */
  deferCounter?: boolean;
}

export function loginAnswers(ctx: ServiceContext) {
  function auditLogin(actor: string, clientAddr: string, success: boolean, message: string): Promise<void> {
    return ctx.audit.record({ type: 'user.login', actor, clientAddr, success, message });
  }

  /**
   * Login (step two) counts against the address's limit only when it is refused, before anything is
   * written for it: a login that succeeds spends a challenge that its step one already counted, so its
   * own count would be a write that limits nothing.
   */
  async function countRefusal(clientAddr: string): Promise<void> {
    await limitAddress(ctx, clientAddr);
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
    passkey: PasskeyRead | undefined,
    clientAddr: string,
    refuse: Refuse,
    options: SpendOptions,
  ): Promise<Verified & { cap: ClusterPolicy }> {
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
      ...(options.origins ? { origins: options.origins } : {}),
      // Nothing may be written before the counter: a device part writes (device-trust/login.ts).
      deferCounter: options.deferCounter === true && !challenge.payload.device,
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
      ...(verified.counter ? { counter: verified.counter } : {}),
    };
  }

  /**
   * After a password: an OTP code or a security key, as the cluster allows. A wrong one counts as a failure
   * for (name, address); a code spent a moment ago does not (it is a double submit, not a guess).
   */
  async function verifySecondFactor(
    challenge: Challenge<'CHALLENGE_SCOPE_LOGIN'>,
    answer: MFAAuthenticateResponse['response'],
    passkey: PasskeyRead | undefined,
    clientAddr: string,
    address: string,
    refuse: Refuse,
    origins: readonly string[] | undefined,
  ): Promise<Verified & { cap: ClusterPolicy }> {
    const cap = passkey?.cap ?? (await loadCap(ctx.store));
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
          ...(passkey ? { passkey } : {}),
          ...(origins ? { origins } : {}),
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

  /**
   * Login step two's common part, for both transports: the challenge from step one is spent, whatever
   * happens next (a login challenge, not expired); then the answer is checked against the cap: a passkey
   * names the user (and is read with the cap), otherwise the second factor of the challenge's user.
   * `origins`: the web UI's exact WebAuthn origins (auth/web/), none for gRPC.
   */
  async function spendAndVerify(
    challengeId: string,
    answer: MFAAuthenticateResponse['response'],
    call: CallContext,
    options: SpendOptions = {},
  ) {
    const address = clientIp(call.clientAddr);
    // One round trip: the challenge spent and, for a security key's answer, the key read with the cap.
    const { row, passkey } = await spendReadingPasskey(
      ctx,
      challengeId,
      answer?.$case === 'webauthnJson' ? answer.value : undefined,
      address,
    );
    const spent = checkSpent(ctx, row, LOGIN_PURPOSES);
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
    const { cap, ...verified } = isPurpose(challenge, 'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN')
      ? await verifyPasskey(challenge, answer, passkey, call.clientAddr, refuse, options)
      : await verifySecondFactor(
          challenge as Challenge<'CHALLENGE_SCOPE_LOGIN'>,
          answer,
          passkey,
          call.clientAddr,
          address,
          refuse,
          options.origins,
        );
    return { challenge, cap, verified, refuse, address };
  }

  /** The user's roles that exist now. */
  function rolesOf(user: UserRow): Promise<Role[]> {
    return loadRoles(ctx.store, roleNamesOf(user));
  }

  return { auditLogin, countRefusal, spendAndVerify, rolesOf, signInUser };
}
