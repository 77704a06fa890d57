// Login in two round trips:
//   1. CreateAuthenticateChallenge{user, password, scope LOGIN} (or {PASSWORDLESS_LOGIN}) → which factors
//      may answer, with WebAuthn request options
//   2. Login{answer (security key or OTP), public keys, ttl} → SSH + X.509 certificates
// The keystore is checked before the password leaves, so a locked or missing keychain fails the login
// without spending a password attempt or an OTP code (passwordless, where nothing the person gave leaves with
// step 1: while step 1 is in flight, and before the PIN is asked). The software session key is written only
// once step 1 has said the session key need not be on a PIV card, while the second factor is answered: a
// login that goes to the card writes no software key at all.
import { randomBytes } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import { ChallengeScope } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import type { LoginResponse } from '../../proto/gen/keyport/v1/auth';
import { formatClusterAddress } from '../cluster-trust';
import type { ClusterAddress } from '../cluster-trust';
import { createSoftwareSigner, openKeyStore } from '../keystore';
import type { KeyStoreKind, SessionSigner } from '../keystore';
import type { ClusterApi } from '../api';
import type { Profile, ProfileStore, TrustedCluster } from '../profiles';
import { ensureTrustedCluster, storedTrustedCluster, webauthnOrigin } from '../session';
import { isTransportFailure } from '../api';
import { connectReplica, RETRYING_NOTICE, withLastReplica } from '../replicas';
import type { TrustPrompt } from '../session';
import type { SecurityKeyPrompts } from '../webauthn';
import { answerChallenge, closeKeysAhead, openKeysAhead } from './mfa';
import type { MfaPreference } from './mfa';
import { now } from '../../proto/clock';
import type { DeviceChallenge, DeviceLoginHello } from '../../proto/gen/keyport/v1/device';
import type { DeviceTrustOptions } from '../device-trust/device';
import { answerDeviceChallenge, startDeviceLogin } from '../device-trust/login';
import type { DeviceLoginStart } from '../device-trust/login';
import { perfSteps } from '../perf';
import type { PerfSteps } from '../perf';
import {
  cardKeyId,
  hardwareKeyRecord,
  loginAttestation,
  meetsPolicy,
  prepareCardSessionKey,
  refusedKeyPolicy,
  reloginNotices,
  stepOneKeyPolicy,
} from './hardware-key';
import type { CardSessionKey, HardwareKeyLoginOptions, StepOneKeyPolicy } from './hardware-key';
import {
  combinePolicies,
  isPrivateKeyPolicy,
  policySatisfies,
} from '../../proto/resources/private-key-policy';
import type { PrivateKeyPolicy } from '../../proto/resources/private-key-policy';

export interface LoginPrompts extends TrustPrompt {
  password(user: string): Promise<string>;
  otpCode(): Promise<string>;
  /** Says something to the person that needs no answer ("retrying on another auth server"). */
  notice?(message: string): void;
  /** Security-key prompts (tap, PIN); without them only OTP can answer. */
  securityKey?: SecurityKeyPrompts;
}

export interface LoginOptions {
  profiles: ProfileStore;
  /** The cluster's (canonical) address: the profile and the trusted cluster are kept under it. */
  address: ClusterAddress;
  /**
   * Every replica's address, `address` first, when given with several (`--cluster a:3025,b:3025`);
   * remembered with the trusted cluster, whose stored list is used otherwise.
   */
  replicas?: ClusterAddress[];
  user: string;
  caPin?: string;
  ttlSeconds?: number;
  keystore: KeyStoreKind;
  prompts: LoginPrompts;
  /** Which second factor to use when several may answer (default: a plugged-in key, else OTP). */
  mfa?: MfaPreference;
  signal?: AbortSignal;
  onCall?: (method: string) => void;
  /** This machine's TPM for device trust (default: KEYPORT_TPM_TCTI or /dev/tpmrm0); false: never. */
  device?: DeviceTrustOptions | false;
  /**
   * The PIV card, for a cluster that requires a hardware-backed session key (prompts, slot, overwrite);
   * without it such a login ends with PRIVATE_KEY_POLICY_NOT_MET.
   */
  hardwareKey?: HardwareKeyLoginOptions;
}

/**
 * Step 1's outcome: the answer to the MFA challenge, the device challenge that came with it, and the
 * private-key policy the session key must meet, when the cluster said.
 */
interface FirstStep {
  mfaResponse: MFAAuthenticateResponse;
  deviceChallenge?: DeviceChallenge;
  keyPolicy?: StepOneKeyPolicy;
}

const noKeyPrompts: SecurityKeyPrompts = {
  tap: () => {},
  pin: () => Promise.reject(new KeyportError('CANCELLED', 'This client cannot ask for a security key PIN.')),
  newPin: () => Promise.reject(new KeyportError('CANCELLED', 'This client cannot set a security key PIN.')),
};

/**
 * The session keys of logins in progress that no saved profile names yet, each with the way to take it
 * back: a process that must end now (a second Ctrl-C) calls abandonLogins first, so no key is left behind.
 */
const unsavedKeys = new Set<() => Promise<void>>();

/** Takes back the session key of every login in progress (waiting for a write in flight to end first). */
export async function abandonLogins(): Promise<void> {
  await Promise.all([...unsavedKeys].map((takeBack) => takeBack()));
}

/** Login with a password, then the second factor the cluster asks for. */
export function loginWithPassword(options: LoginOptions): Promise<Profile> {
  if (!options.user) {
    throw new KeyportError('INVALID_ARGUMENT', 'Give a user name (--user).', { fieldPath: 'user' });
  }
  // Asked once: a ceremony restarted on another replica sends it again (a code or a touch is asked anew).
  let given: Promise<string> | undefined;
  return login(options, async (api, origin, device, perf, key) => {
    // The keystore is ready (login awaits it before trust).
    given ??= options.prompts.password(options.user);
    given.catch(() => (given = undefined));
    const password = await given;
    perf.step('prompt password');
    const challenge = await api.auth.createAuthenticateChallenge({
      user: options.user,
      password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      device,
    });
    perf.step('call 1 (CreateAuthenticateChallenge)');
    const keyPolicy = stepOneKeyPolicy(challenge);
    key.policyKnown(keyPolicy);
    const mfaResponse = await answerChallenge(challenge, {
      origin,
      preference: options.mfa,
      signal: options.signal,
      prompts: { otpCode: options.prompts.otpCode, securityKey: options.prompts.securityKey ?? noKeyPrompts },
    });
    perf.step('second factor');
    return { mfaResponse, deviceChallenge: challenge.deviceChallenge, keyPolicy };
  });
}

/**
 * Passwordless and usernameless: a discoverable credential with user verification (the key's PIN); the
 * user handle the key returns names the user. With `user` given, only that user's passkeys on the key
 * count (as tsh does with --user); the server is still asked without a name, so it says nothing about
 * which users exist.
 */
export function loginPasswordless(
  options: Omit<LoginOptions, 'user' | 'mfa'> & { user?: string },
): Promise<Profile> {
  const firstStep: FirstStepFn = async (api, origin, device, perf, key) => {
    // Only a key can answer: it is opened (and asked its getInfo and PIN retries) while
    // step 1 is in flight. The ceremony closes it; so does this, whatever happens (closing twice is
    // harmless).
    const keys = openKeysAhead(options.signal);
    try {
      const call = api.auth.createAuthenticateChallenge({
        user: '',
        password: '',
        scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
        device,
      });
      call.catch(() => {});
      // The keystore is checked while step 1 (which carries nothing the person gave) is in flight, before
      // the PIN is asked: a missing or locked keychain fails the login here.
      await key.ready();
      const challenge = await call;
      perf.step('call 1 (CreateAuthenticateChallenge), keystore check alongside');
      const keyPolicy = stepOneKeyPolicy(challenge);
      key.policyKnown(keyPolicy);
      const mfaResponse = await answerChallenge(challenge, {
        origin,
        preference: 'key',
        signal: options.signal,
        user: options.user || undefined,
        keys,
        prompts: {
          otpCode: options.prompts.otpCode,
          securityKey: options.prompts.securityKey ?? noKeyPrompts,
        },
      });
      perf.step('security key assertion');
      return { mfaResponse, deviceChallenge: challenge.deviceChallenge, keyPolicy };
    } finally {
      await closeKeysAhead(keys);
    }
  };
  return login({ ...options, user: options.user ?? '' }, firstStep, { keystoreAlongsideFirstCall: true });
}

/** What step 1 tells the login of the session key, and when. */
interface SessionKeyTurns {
  /** Settles once the keystore is known to take a key (it rejects for a missing or locked keychain). */
  ready(): Promise<void>;
  /**
   * Step 1's answer is in: the software key is made and written now (alongside the second factor) unless
   * this policy, or one the login knows already, puts the session key on the PIV card.
   */
  policyKnown(policy: StepOneKeyPolicy | undefined): void;
}

/** Step 1 (and the second factor). */
type FirstStepFn = (
  api: ClusterApi,
  origin: string,
  device: DeviceLoginHello | undefined,
  perf: PerfSteps,
  key: SessionKeyTurns,
) => Promise<FirstStep>;

/**
 * The steps every login shares: the keystore checked first (before anything leaves, so a locked or missing
 * keychain fails the login without spending a password attempt or a code), then trust, then `firstStep`
 * (the MFA answer; the software key written alongside it, unless the key goes on the card), then Login for
 * certificates, then the profile. With `keystoreAlongsideFirstCall` (passwordless: step 1 carries nothing
 * the person gave) and a cluster already trusted, the keystore check is not awaited before step 1:
 * `firstStep` awaits it before asking the person anything.
 */
async function login(
  options: LoginOptions,
  firstStep: FirstStepFn,
  order: { keystoreAlongsideFirstCall?: boolean } = {},
): Promise<Profile> {
  const perf = perfSteps('client.login');
  const { profiles, prompts } = options;
  const address = formatClusterAddress(options.address);

  // The stored trust is read and checked while the session key is made and written: nothing is asked,
  // sent or saved before the key is in the keystore (a problem here is met again, in order, by
  // ensureTrustedCluster).
  const alreadyTrusted = storedTrustedCluster(
    profiles,
    options.address,
    options.caPin,
    options.replicas,
  ).catch(() => undefined);
  const keystore = openKeyStore(options.keystore, profiles.home);
  const keyId = `${address}/${options.user || 'passwordless'}/${randomBytes(6).toString('hex')}`;
  let keyStored: Promise<SessionSigner> | undefined;
  const storeKey = (): Promise<SessionSigner> => {
    if (!keyStored) {
      // Made at once; the promise settles when the keystore holds it. Its signer gives public keys only.
      keyStored = createSoftwareSigner(keystore, keyId, 'ecdsa-p256');
      keyStored.catch(() => {});
    }
    return keyStored;
  };
  // Once written, the key is this login's to take back until the profile that names it is being saved.
  const takeBack = async (): Promise<void> => {
    const written = await keyStored?.then(
      () => true,
      () => false,
    );
    if (written) await keystore.delete(keyId).catch(() => false);
  };
  // Started now, whatever the order: the check has the whole way to step 1 to run.
  const keystoreReady = keystore.ready();
  keystoreReady.catch(() => {});
  // The keystore goes first: a missing or locked keychain fails the login before anything is trusted,
  // sent or saved. Only passwordless with a cluster trusted already lets step 1 go first (trusting one
  // may ask).
  const trustedAhead: TrustedCluster | undefined = order.keystoreAlongsideFirstCall
    ? await alreadyTrusted
    : undefined;
  if (!trustedAhead) {
    await keystoreReady;
    perf.step('keystore check');
  }

  let api: ClusterApi | undefined;
  let device: DeviceLoginStart = {};
  // The session key on the PIV card, once the cluster requires one: Login goes with it instead.
  let card: CardSessionKey | undefined;
  // The key is written only in here (step 1's answer, or Login): it is this login's to take back.
  unsavedKeys.add(takeBack);
  try {
    // Trusted during this login: its ClusterInfo (device trust settings included) is fresh.
    const trustFetchedNow = !trustedAhead && !(await alreadyTrusted);
    const trusted =
      trustedAhead ??
      (await alreadyTrusted) ??
      (await ensureTrustedCluster(profiles, options.address, {
        caPin: options.caPin,
        prompt: prompts,
        onCall: options.onCall,
        ...(options.replicas ? { replicas: options.replicas } : {}),
      }));
    // What the profile step reads is read while the ceremony is in flight.
    const stored = Promise.all([profiles.getProfile(address), profiles.getTrustedCluster(options.address)]);
    stored.catch(() => {});
    // With several replicas, a ceremony whose replica became unreachable (the transport's UNAVAILABLE,
    // never the service's refusal) starts again from step 1 on the next one: a fresh challenge, the
    // password resent, the second factor asked anew (an OTP code is single use, a touch signs one challenge).
    const failed = new Set<string>();
    const several = !!trusted.replicas && trusted.replicas.length > 1;
    let issued: LoginResponse | undefined;
    let answeredBy = options.address;
    // The policy a refused Login named: the login starts again from step 1 with the card's key.
    let refusedPolicy: PrivateKeyPolicy | undefined;
    let required: PrivateKeyPolicy = 'none';
    // Passwordless step 1 knows only the cap's policy (no user yet): the one this cluster asked last time
    // counts too, so a second passwordless login goes to the card at once, without a refusal.
    const lastTime = rememberedPolicy(trusted);
    const requiredAfter = (keyPolicy: StepOneKeyPolicy | undefined): PrivateKeyPolicy =>
      combinePolicies(
        combinePolicies(keyPolicy?.policy ?? 'none', refusedPolicy ?? 'none'),
        order.keystoreAlongsideFirstCall ? lastTime : 'none',
      );
    const keyTurns: SessionKeyTurns = {
      ready: () => keystoreReady,
      policyKnown: (keyPolicy) => {
        if (requiredAfter(keyPolicy) === 'none') void storeKey();
      },
    };
    /** Moves to the card's key for `policy` (said once, as the seed says it, unless expected). */
    const useCardKey = async (
      policy: PrivateKeyPolicy,
      clusterSlot: string | undefined,
      expected: boolean,
    ) => {
      if (policy === 'none' || meetsPolicy(card, policy)) return;
      if (!expected) for (const line of reloginNotices(policy)) prompts.notice?.(line);
      await card?.session.close();
      card = undefined;
      card = await prepareCardSessionKey(options.hardwareKey, policy, clusterSlot);
      perf.step('hardware key');
    };
    while (!issued) {
      api = await connectReplica(trusted, { onCall: options.onCall, skip: failed });
      perf.step('trusted cluster, channel');
      try {
        const channel = api;
        // This machine's TPM, when the cluster uses device trust: offered in step 1, answered in step 2.
        device = await startDeviceLogin(
          trusted,
          options.device,
          trustFetchedNow
            ? undefined
            : async () => {
                const info = await channel.auth.getClusterInfo({});
                return { mode: info.deviceTrustMode || 'off', autoEnroll: info.deviceAutoEnroll };
              },
        );
        perf.step('device hello');
        const { mfaResponse, deviceChallenge, keyPolicy } = await firstStep(
          api,
          webauthnOrigin(trusted),
          device.hello,
          perf,
          keyTurns,
        );
        // Step 1 said the key must be on the card (or a refused Login did, or passwordless remembers it):
        // the card's key goes instead, and no software key was written.
        required = requiredAfter(keyPolicy);
        await useCardKey(
          required,
          keyPolicy?.slot,
          refusedPolicy === undefined && policySatisfies(lastTime, required),
        );
        // Login never goes without the software key in the keystore.
        const sessionSigner = card?.prepared.signer ?? (await storeKey());
        const deviceResponse = await answerDeviceChallenge(device, deviceChallenge);
        perf.step('device quote');
        issued = await api.auth.login({
          mfaResponse,
          sshPublicKey: sessionSigner.sshPublicKey,
          tlsPublicKey: sessionSigner.publicKeyPem,
          ttlSeconds: options.ttlSeconds ?? 0,
          deviceResponse,
          ...(card ? { hardwareKeyAttestation: loginAttestation(card) } : {}),
        });
        answeredBy = api.address;
      } catch (error) {
        // Login refused for the key's policy (a cluster that did not say it in step 1): once, the card's
        // key and a login from step 1 (a fresh challenge; the second factor is asked anew).
        const policy = refusedKeyPolicy(error);
        if (policy !== undefined && refusedPolicy === undefined && !meetsPolicy(card, policy)) {
          refusedPolicy = policy;
          await useCardKey(policy, undefined, false);
          api?.close();
          api = undefined;
          await device.device?.close().catch(() => {});
          device = {};
          continue;
        }
        if (!several || !isTransportFailure(error)) throw error;
        failed.add(formatClusterAddress(api.address));
        if (failed.size === 1) prompts.notice?.(RETRYING_NOTICE);
        api.close();
        api = undefined;
        await device.device?.close().catch(() => {});
        device = {};
      }
    }
    perf.step('call 2 (Login)');
    const [previous, trustedNow] = await stored;
    const hardwareKey = card && hardwareKeyRecord(card);
    const profileKeyId = hardwareKey ? cardKeyId(hardwareKey) : keyId;
    const profile: Profile = {
      address,
      cluster: issued.clusterName,
      user: issued.user,
      roles: issued.roles,
      logins: issued.logins,
      mfaVerified: issued.mfaVerified,
      validAfterMs: now(),
      expiresMs: issued.expiresMs,
      keystore: options.keystore,
      keyId: profileKeyId,
      ...(hardwareKey ? { hardwareKey } : {}),
      tlsCertPem: issued.tlsCertificate,
      sshCertificate: issued.sshCertificate,
      ...(issued.device ? { device: { ...issued.device } } : {}),
    };
    // Remembered with the cluster: the name (a sign-out, here or in the app, leaves it to sign in again),
    // the cluster's device trust settings and whether it recognised this device, for the next login, and
    // the replica that answered, tried first next time.
    // A login that offered no device (none here, or device trust off) leaves the recognised one as it was.
    const remembered = trustedNow && {
      ...withLastReplica(device.hello ? withoutCredential(trustedNow) : trustedNow, answeredBy),
      lastUser: issued.user,
      deviceTrust: { mode: issued.deviceTrustMode || 'off', autoEnroll: issued.deviceAutoEnroll },
      ...(issued.device ? { deviceCredentialId: issued.device.credentialId } : {}),
      privateKeyPolicy: required,
    };
    // Two files apart: written side by side. The previous session's key goes once the profile no longer
    // names it.
    unsavedKeys.delete(takeBack);
    await Promise.all([
      profiles.saveProfile(profile).then(async () => {
        // A card's key stays on the card (the next login reuses it); a software key no profile names goes.
        if (previous && !previous.hardwareKey && previous.keyId !== profileKeyId) {
          await openKeyStore(previous.keystore, profiles.home)
            .delete(previous.keyId)
            .catch(() => false);
        }
        if (hardwareKey) await keystore.delete(keyId).catch(() => false);
      }),
      remembered && profiles.trustCluster(remembered),
    ]);
    perf.step('profile');
    return profile;
  } catch (error) {
    // Once the put is over (it may still run when step 1 failed first), its key is taken back.
    unsavedKeys.delete(takeBack);
    await takeBack();
    throw error;
  } finally {
    unsavedKeys.delete(takeBack);
    api?.close();
    await card?.session.close().catch(() => {});
    await device.device?.close().catch(() => {});
    perf.step('close');
    perf.end();
  }
}

/** The private-key policy the trusted cluster asked last time ('none' when it asked none, or an unknown one). */
function rememberedPolicy(trusted: TrustedCluster): PrivateKeyPolicy {
  const policy = trusted.privateKeyPolicy;
  return policy !== undefined && isPrivateKeyPolicy(policy) ? policy : 'none';
}

function withoutCredential<T extends { deviceCredentialId?: string }>(
  trusted: T,
): Omit<T, 'deviceCredentialId'> {
  const { deviceCredentialId: _previous, ...rest } = trusted;
  return rest;
}

/** Removes the session: certificates and profile, and the private key from the keystore. */
export async function logout(profiles: ProfileStore, address?: string): Promise<Profile | undefined> {
  const profile = await profiles.getProfile(address);
  if (!profile) return undefined;
  // A card's key is left on the card: Keyport's mark lets the next login reuse it.
  if (!profile.hardwareKey) await openKeyStore(profile.keystore, profiles.home).delete(profile.keyId);
  await profiles.removeProfile(profile.address);
  return profile;
}
