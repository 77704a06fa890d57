// The platform side of WebAuthn for the CLI and the app: register (MakeCredential) and authenticate
// (GetAssertion) with every plugged-in key at once, PIN/UV, and the WebAuthn JSON the auth API carries.
import { KeyportError } from '../../proto/errors';
import type { PerfSteps } from '../perf';
import type { CallOptions, PinPermission } from '../hardware/fido/client';
import { Ctap2Error, option } from '../hardware/fido/ctap2';
import type { AssertionResponse, AuthenticatorInfo, MakeCredentialResponse } from '../hardware/fido/ctap2';
import { CtaphidError } from '../hardware/fido/ctaphid';
import type { KeepaliveStatus } from '../hardware/fido/ctaphid';
import { clientDataJSON, originHost, sha256 } from './client-data';
import { authenticationResponse, planAssertion, planRegistration, registrationResponse } from './convert';
import type { SecurityKey } from './keys';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from './types';

/** Wording, in the style of the seed documents (tsh). */
export const SECURITY_KEY_MESSAGES = {
  tap: 'Tap any security key',
  tapAgain: 'Tap your security key again to complete the request',
  pin: 'Enter the PIN of your security key',
  newPin: 'Your security key has no PIN yet. Enter a new PIN for your security key',
  notRegistered: 'The security key is not registered',
  noKeys: 'No security key found. Plug in your security key and try again.',
  cancelled: 'The security key request was cancelled.',
  alreadyRegistered: 'This security key is already registered. Use another key.',
} as const;

export interface SecurityKeyPrompts {
  /** Shows a line such as "Tap any security key", once a key reports that it waits for presence. */
  tap(message: string): void;
  /** "Enter the PIN of your security key", with the attempts the key has left. */
  pin(retriesLeft: number | undefined): Promise<string>;
  /** The key has no PIN and user verification is required: ask for a new one (set on the key). */
  newPin(): Promise<string>;
  /** Information lines: "The security key is not registered", "Wrong PIN (7 attempts left)...". */
  notice?(message: string): void;
  /** Several accounts on the key for a passwordless login: the index of the one to use (default 0). */
  chooseAccount?(accounts: { name?: string; displayName?: string }[]): Promise<number>;
}

export interface CeremonyOptions {
  /** `https://<cluster public host[:port]>` (originFor). */
  origin: string;
  /** From openKeys(); the ceremony does not close them. */
  keys: readonly SecurityKey[];
  prompts: SecurityKeyPrompts;
  /** Aborting cancels every key (CTAPHID CANCEL) and rejects with KeyportError CANCELLED. */
  signal?: AbortSignal;
  /** Per CTAP request; defaults to the options' timeout, else 60 s. */
  timeoutMs?: number;
  /**
   * A passwordless login for this user only (tsh's --user): of the accounts a key returns, only this
   * user's count, and the person is asked to choose only among several of them.
   */
  user?: string;
  /** Step timings (bench/, KEYPORT_PERF=1): each CTAP exchange of the ceremony as a step. */
  perf?: PerfSteps;
}

const DEFAULT_TIMEOUT_MS = 60_000;

function cancelledError(): KeyportError {
  return new KeyportError('CANCELLED', SECURITY_KEY_MESSAGES.cancelled);
}

function isCode(error: unknown, code: string): boolean {
  return (error instanceof Ctap2Error || error instanceof CtaphidError) && error.code === code;
}

/** Errors a person reads: the ceremony's own, as KeyportError; the key's, as typed CTAP errors. */
function translate(error: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted || isCode(error, 'CANCELLED') || isCode(error, 'KEEPALIVE_CANCEL'))
    return cancelledError();
  if (isCode(error, 'CREDENTIAL_EXCLUDED'))
    return new KeyportError('ALREADY_EXISTS', SECURITY_KEY_MESSAGES.alreadyRegistered);
  if (isCode(error, 'NO_CREDENTIALS'))
    return new KeyportError(
      'NOT_FOUND',
      `${SECURITY_KEY_MESSAGES.notRegistered}. Use a key registered to this account.`,
    );
  return error;
}

function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(cancelledError());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(cancelledError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

interface Context {
  prompts: SecurityKeyPrompts;
  signal?: AbortSignal;
  timeoutMs: number;
  perf?: PerfSteps;
}

/**
 * Sends one request to every key at once. The first key to succeed wins and the others are cancelled
 * (and awaited, so their channels are clean). A key that answers NO_CREDENTIALS (before any touch)
 * says "The security key is not registered" and is dropped; a key that closes its transport is dropped.
 * Any other error from a key ends the race with that error. The tap prompt shows once, when a key
 * first reports KEEPALIVE "user presence needed".
 */
export async function raceKeys<T>(
  keys: readonly SecurityKey[],
  attempt: (key: SecurityKey, call: CallOptions) => Promise<T>,
  ctx: { prompts: SecurityKeyPrompts; signal?: AbortSignal; timeoutMs?: number },
  tapMessage: string = SECURITY_KEY_MESSAGES.tap,
): Promise<{ key: SecurityKey; value: T }> {
  if (keys.length === 0) throw new KeyportError('NOT_FOUND', SECURITY_KEY_MESSAGES.noKeys);
  if (ctx.signal?.aborted) throw cancelledError();
  let tapShown = false;
  const onKeepalive = (status: KeepaliveStatus) => {
    if (status !== 'user-presence-needed' || tapShown) return;
    tapShown = true;
    ctx.prompts.tap(tapMessage);
  };
  const controllers = keys.map(() => new AbortController());
  const abortAll = () => controllers.forEach((c) => c.abort());
  ctx.signal?.addEventListener('abort', abortAll, { once: true });
  let winner: { key: SecurityKey; value: T } | undefined;
  let failure: { error: unknown } | undefined;
  const dropped: unknown[] = [];
  try {
    await new Promise<void>((resolve) => {
      let settled = 0;
      const done = () => {
        if (++settled === keys.length) resolve();
      };
      keys.forEach((key, i) => {
        const controller = controllers[i]!;
        attempt(key, { signal: controller.signal, onKeepalive, timeoutMs: ctx.timeoutMs }).then(
          (value) => {
            if (!winner && !failure) {
              winner = { key, value };
              controllers.forEach((c, j) => j !== i && c.abort());
            }
            done();
          },
          (error: unknown) => {
            if (winner || failure || controller.signal.aborted) return done();
            if (isCode(error, 'NO_CREDENTIALS')) {
              ctx.prompts.notice?.(
                keys.length > 1
                  ? `${SECURITY_KEY_MESSAGES.notRegistered}: ${key.label}`
                  : SECURITY_KEY_MESSAGES.notRegistered,
              );
              dropped.push(error);
            } else if (isCode(error, 'TRANSPORT_CLOSED') && keys.length > 1) {
              dropped.push(error);
            } else {
              failure = { error };
              controllers.forEach((c, j) => j !== i && c.abort());
            }
            done();
          },
        );
      });
    });
  } finally {
    ctx.signal?.removeEventListener('abort', abortAll);
  }
  if (ctx.signal?.aborted) throw cancelledError();
  if (winner) return winner;
  if (failure) throw translate(failure.error, ctx.signal);
  throw translate(dropped[0], ctx.signal);
}

/** A PIN/UV auth token: sets a PIN first on a key that has none, and asks again after a wrong PIN. */
async function pinToken(
  key: SecurityKey,
  permissions: PinPermission[],
  rpId: string,
  ctx: Context,
): Promise<Uint8Array> {
  const call: CallOptions = { signal: ctx.signal, timeoutMs: ctx.timeoutMs };
  const info = await key.client.getInfo(call);
  ctx.perf?.step('getInfo');
  const clientPin = option(info, 'clientPin');
  if (clientPin === undefined || !info.pinUvAuthProtocols.includes(2)) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `${key.label} cannot verify its user with a PIN. Use another security key.`,
    );
  }
  if (!clientPin) {
    const pin = await abortable(ctx.prompts.newPin(), ctx.signal);
    await key.client.setPin(pin, call);
    return key.client.getPinToken(pin, permissions, rpId, call);
  }
  // Read ahead while the login's first call was in flight (preparePin), else now.
  let retries: number | undefined =
    key.client.takePreparedPinRetries() ?? (await key.client.getPinRetries(call));
  ctx.perf?.step('getPinRetries');
  for (;;) {
    const pin = await abortable(ctx.prompts.pin(retries), ctx.signal);
    ctx.perf?.step('PIN prompt');
    try {
      const token = await key.client.getPinToken(pin, permissions, rpId, call);
      ctx.perf?.step('getKeyAgreement + getPinUvAuthToken');
      return token;
    } catch (error) {
      if (error instanceof Ctap2Error && error.code === 'PIN_INVALID' && (error.retries ?? 1) > 0) {
        ctx.prompts.notice?.(error.message);
        retries = error.retries;
        continue;
      }
      throw error;
    }
  }
}

function context(options: CeremonyOptions, planTimeout: number | undefined): Context {
  return {
    prompts: options.prompts,
    signal: options.signal,
    timeoutMs: options.timeoutMs ?? planTimeout ?? DEFAULT_TIMEOUT_MS,
    perf: options.perf,
  };
}

async function infos(
  keys: readonly SecurityKey[],
  ctx: Context,
): Promise<Map<SecurityKey, AuthenticatorInfo>> {
  const entries = await Promise.all(
    keys.map(
      async (k) => [k, await k.client.getInfo({ signal: ctx.signal, timeoutMs: ctx.timeoutMs })] as const,
    ),
  );
  return new Map(entries);
}

/** The client data a browser on `origin` would send, and the hash the key signs over. */
function signedClientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string) {
  const clientData = clientDataJSON({ type, challenge, origin });
  return { clientData, clientDataHash: sha256(clientData) };
}

/**
 * navigator.credentials.create() for a USB security key: the key makes the credential, the result is
 * the RegistrationResponseJSON the relying party verifies.
 */
export async function register(
  options: PublicKeyCredentialCreationOptionsJSON | string,
  ceremony: CeremonyOptions,
): Promise<RegistrationResponseJSON> {
  const plan = planRegistration(options, originHost(ceremony.origin));
  const ctx = context(ceremony, plan.timeoutMs);
  const { clientData, clientDataHash } = signedClientData('webauthn.create', plan.challenge, ceremony.origin);
  try {
    if (ceremony.keys.length === 0) throw new KeyportError('NOT_FOUND', SECURITY_KEY_MESSAGES.noKeys);
    const info = await infos(ceremony.keys, ctx);
    const rkFor = (key: SecurityKey): boolean => {
      const supportsRk = option(info.get(key)!, 'rk') === true;
      if (plan.residentKey === 'required') return true;
      return plan.residentKey === 'preferred' && supportsRk && plan.userVerification !== 'discouraged';
    };
    const keys = ceremony.keys.filter(
      (k) => plan.residentKey !== 'required' || option(info.get(k)!, 'rk') === true,
    );
    if (keys.length === 0)
      throw new KeyportError(
        'PRECONDITION_FAILED',
        'This cluster needs a security key that stores passkeys (resident keys).',
      );
    // CTAP 2.1 §6.1.2: without makeCredUvNotRqd a discoverable credential needs UV.
    const needsUv = (key: SecurityKey): boolean => {
      const i = info.get(key)!;
      if (plan.userVerification === 'required') return true;
      return rkFor(key) && option(i, 'clientPin') === true && option(i, 'makeCredUvNotRqd') !== true;
    };
    const make = (key: SecurityKey, call: CallOptions, token?: Uint8Array): Promise<MakeCredentialResponse> =>
      key.client.makeCredential(
        {
          clientDataHash,
          rp: plan.rp,
          user: plan.user,
          pubKeyCredParams: plan.pubKeyCredParams,
          excludeList: plan.excludeList,
          options: rkFor(key) ? { rk: true } : undefined,
          pinUvAuthToken: token,
        },
        call,
      );
    let made: { key: SecurityKey; value: MakeCredentialResponse };
    if (!keys.some(needsUv)) {
      made = await raceKeys(keys, (key, call) => make(key, call), ctx);
    } else {
      const key =
        keys.length === 1
          ? keys[0]!
          : (await raceKeys(keys, (k, call) => k.client.selectByTouch(call), ctx)).key;
      const token = await pinToken(key, ['mc'], plan.rp.id, ctx);
      made = await raceKeys(
        [key],
        (k, call) => make(k, call, token),
        ctx,
        keys.length === 1 ? SECURITY_KEY_MESSAGES.tap : SECURITY_KEY_MESSAGES.tapAgain,
      );
    }
    return registrationResponse(made.value, clientData, rkFor(made.key));
  } catch (error) {
    throw translate(error, ceremony.signal);
  }
}

/**
 * navigator.credentials.get() for USB security keys: asks every key at once, the first one touched
 * wins. With userVerification 'required' the chosen key's PIN is asked (a PIN is set first on a key
 * that has none) and the assertion uses a PIN/UV auth token with the ga permission for the RP ID.
 */
export async function authenticate(
  options: PublicKeyCredentialRequestOptionsJSON | string,
  ceremony: CeremonyOptions,
): Promise<AuthenticationResponseJSON> {
  const plan = planAssertion(options, originHost(ceremony.origin));
  const ctx = context(ceremony, plan.timeoutMs);
  const { clientData, clientDataHash } = signedClientData('webauthn.get', plan.challenge, ceremony.origin);
  ctx.perf?.step('plan, client data');
  const get = (key: SecurityKey, call: CallOptions, token?: Uint8Array): Promise<AssertionResponse[]> =>
    key.client.getAssertion(
      { rpId: plan.rpId, clientDataHash, allowList: plan.allowList, pinUvAuthToken: token },
      call,
    );
  try {
    const keys = ceremony.keys;
    let result: { key: SecurityKey; value: AssertionResponse[] };
    if (plan.userVerification !== 'required') {
      try {
        result = await raceKeys(keys, (key, call) => get(key, call), ctx);
      } catch (error) {
        // A key may insist on its PIN (CTAP 2.1 alwaysUv): then verify with it.
        if (!isCode(error, 'PIN_REQUIRED') || keys.length !== 1) throw error;
        result = await assertWithPin(keys[0]!, false);
      }
    } else if (keys.length <= 1) {
      if (keys.length === 0) throw new KeyportError('NOT_FOUND', SECURITY_KEY_MESSAGES.noKeys);
      result = await assertWithPin(keys[0]!, false);
    } else {
      // Several keys: a first touch picks the key (and keys without the credential drop out), then its PIN.
      const chosen = await raceKeys(keys, (key, call) => get(key, call), ctx);
      result = await assertWithPin(chosen.key, true);
    }
    const response = authenticationResponse(await pickAccount(result.value, ctx, ceremony.user), clientData);
    ctx.perf?.step('response JSON');
    return response;
  } catch (error) {
    throw translate(error, ceremony.signal);
  }

  async function assertWithPin(key: SecurityKey, again: boolean) {
    const token = await pinToken(key, ['ga'], plan.rpId, ctx);
    const asserted = await raceKeys(
      [key],
      (k, call) => get(k, call, token),
      ctx,
      again ? SECURITY_KEY_MESSAGES.tapAgain : SECURITY_KEY_MESSAGES.tap,
    );
    ctx.perf?.step('getAssertion');
    return asserted;
  }
}

/**
 * The account to sign in as. With a user name typed, only that user's accounts count: a key returns
 * names only when it holds several accounts for the RP (CTAP 2.1 §6.2.2), so one account without a name
 * is taken, and the server names the user it belongs to.
 */
async function pickAccount(
  all: AssertionResponse[],
  ctx: Context,
  user?: string,
): Promise<AssertionResponse> {
  if (all.length === 0) throw new Ctap2Error('INVALID_RESPONSE');
  const assertions = user ? all.filter((a) => a.user?.name === undefined || a.user.name === user) : all;
  const first = assertions[0];
  if (!first) {
    throw new KeyportError(
      'NOT_FOUND',
      `This security key holds no passkey for "${user}". Use a key with a passkey for "${user}", or leave the user name empty.`,
    );
  }
  if (assertions.length === 1 || !ctx.prompts.chooseAccount) return first;
  const index = await abortable(
    ctx.prompts.chooseAccount(
      assertions.map((a) => ({ name: a.user?.name, displayName: a.user?.displayName })),
    ),
    ctx.signal,
  );
  const chosen = assertions[index];
  if (!chosen) throw new KeyportError('INVALID_ARGUMENT', 'No such account on the security key.');
  return chosen;
}
