// Login in two round trips:
//   1. CreateAuthenticateChallenge{user, password, scope LOGIN} (or {PASSWORDLESS_LOGIN}) → which factors
//      may answer, with WebAuthn request options, and the private-key policy the session key must meet
//   2. Login{answer (security key or OTP), public keys, ttl} → SSH + X.509 certificates
// The keystore is checked before the password leaves, so a locked or missing keychain fails the login
// without spending a password attempt or an OTP code (passwordless, where nothing the person gave leaves with
// step 1: while step 1 is in flight, and before the PIN is asked). The software session key is written only
// once step 1 has said the session key need not be on a PIV card, while the second factor is answered: a
// login that goes to the card writes no software key at all. Step 1 by password or passwordless:
// login-first-step.ts; the software key: login-session-key.ts; the card's key and the policy:
// login-card-key.ts; the profile: login-profile.ts.
import { KeyportError } from '../../proto/errors';
import type { LoginResponse } from '../../proto/gen/keyport/v1/auth';
import { formatClusterAddress } from '../cluster-trust';
import type { ClusterAddress } from '../cluster-trust';
import { openKeyStore } from '../keystore';
import type { KeyStoreKind } from '../keystore';
import type { ClusterApi } from '../api';
import type { Profile, ProfileStore, TrustedCluster } from '../profiles';
import { ensureTrustedCluster, storedTrustedCluster, webauthnOrigin } from '../session';
import { isTransportFailure } from '../api';
import { connectReplica, resolvedAddressCount, RETRYING_NOTICE } from '../replicas';
import type { TrustPrompt } from '../session';
import type { MfaPreference } from './mfa';
import type { DeviceTrustOptions } from '../device-trust/device';
import { answerDeviceChallenge, startDeviceLogin } from '../device-trust/login';
import type { DeviceLoginStart } from '../device-trust/login';
import { perfSteps } from '../perf';
import type { HardwareKeyLoginOptions } from './hardware-key';
import { passwordlessStep, passwordStep } from './login-first-step';
import type { FirstStepFn, SessionKeyTurns, StepOnePrompts } from './login-first-step';
import { LoginCardKey } from './login-card-key';
import { saveSession } from './login-profile';
import { loginSessionKey } from './login-session-key';

export { abandonLogins } from './login-session-key';

export interface LoginPrompts extends TrustPrompt, StepOnePrompts {
  /** Says something to the person that needs no answer ("retrying on another auth server"). */
  notice?(message: string): void;
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

/** Login with a password, then the second factor the cluster asks for. */
export function loginWithPassword(options: LoginOptions): Promise<Profile> {
  if (!options.user) {
    throw new KeyportError('INVALID_ARGUMENT', 'Give a user name (--user).', { fieldPath: 'user' });
  }
  return login(options, passwordStep(options));
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
  return login({ ...options, user: options.user ?? '' }, passwordlessStep(options), {
    keystoreAlongsideFirstCall: true,
  });
}

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
  // Its keystore check starts now, whatever the order: it has the whole way to step 1 to run.
  const key = loginSessionKey(
    options.keystore,
    profiles.home,
    `${address}/${options.user || 'passwordless'}`,
  );
  // The keystore goes first: a missing or locked keychain fails the login before anything is trusted,
  // sent or saved. Only passwordless with a cluster trusted already lets step 1 go first (trusting one
  // may ask).
  const trustedAhead: TrustedCluster | undefined = order.keystoreAlongsideFirstCall
    ? await alreadyTrusted
    : undefined;
  if (!trustedAhead) {
    await key.ready;
    perf.step('keystore check');
  }

  let api: ClusterApi | undefined;
  let device: DeviceLoginStart = {};
  // The session key on the PIV card, once the cluster requires one: Login goes with it instead.
  let cardKey: LoginCardKey | undefined;
  // The key is written only in here (step 1's answer, or Login): it is this login's to take back.
  key.hold();
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
    const card = new LoginCardKey({
      hardwareKey: options.hardwareKey,
      notice: (line) => prompts.notice?.(line),
      perf,
      trusted,
      rememberLastPolicy: !!order.keystoreAlongsideFirstCall,
    });
    cardKey = card;
    const keyTurns: SessionKeyTurns = {
      ready: () => key.ready,
      policyKnown: (keyPolicy) => {
        if (card.requiredAfter(keyPolicy) === 'none') void key.store();
      },
    };
    // With several replicas, a ceremony whose replica became unreachable (the transport's UNAVAILABLE,
    // never the service's refusal) starts again from step 1 on the next one: a fresh challenge, the
    // password resent, the second factor asked anew (an OTP code is single use, a touch signs one challenge).
    // One address whose name resolves to several replicas starts again on a new channel to that name (which
    // passes over the one that stopped answering), at most once per other address it resolves to.
    const failed = new Set<string>();
    const several = !!trusted.replicas && trusted.replicas.length > 1;
    let triesBehindName: number | undefined;
    let retried = false;
    let issued: LoginResponse | undefined;
    let answeredBy = options.address;
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
        // Step 1 and the second factor.
        const { mfaResponse, deviceChallenge, keyPolicy } = await firstStep(
          api,
          webauthnOrigin(trusted),
          device.hello,
          perf,
          keyTurns,
        );
        // Step 1 said the key must be on the card (or a refused Login did, or passwordless remembers it):
        // the card's key goes instead, and no software key was written.
        await card.afterStepOne(keyPolicy);
        // Login never goes without the software key in the keystore.
        const sessionSigner = card.signer ?? (await key.store());
        const deviceResponse = await answerDeviceChallenge(device, deviceChallenge);
        perf.step('device quote');
        // Step 2.
        issued = await api.auth.login({
          mfaResponse,
          sshPublicKey: sessionSigner.sshPublicKey,
          tlsPublicKey: sessionSigner.publicKeyPem,
          ttlSeconds: options.ttlSeconds ?? 0,
          deviceResponse,
          ...card.attestation(),
        });
        answeredBy = api.address;
      } catch (error) {
        // Refused for the key's policy: once, from step 1 again with the card's key. Else another replica.
        if (!(await card.afterRefusal(error))) {
          if (!isTransportFailure(error)) throw error;
          if (several) {
            failed.add(formatClusterAddress(api.address));
          } else {
            triesBehindName ??= (await resolvedAddressCount(api.address)) - 1;
            if (triesBehindName <= 0) throw error;
            triesBehindName -= 1;
          }
          if (!retried) prompts.notice?.(RETRYING_NOTICE);
          retried = true;
        }
        api.close();
        api = undefined;
        await device.device?.close().catch(() => {});
        device = {};
      }
    }
    perf.step('call 2 (Login)');
    // The profile, with the card's key or the software one, and the cluster remembered with it.
    const profile = await saveSession({
      profiles,
      stored,
      address,
      keystore: options.keystore,
      issued,
      answeredBy,
      deviceOffered: !!device.hello,
      key,
      card,
    });
    perf.step('profile');
    return profile;
  } catch (error) {
    // Once the put is over (it may still run when step 1 failed first), its key is taken back.
    key.release();
    await key.takeBack();
    throw error;
  } finally {
    key.release();
    api?.close();
    await cardKey?.close();
    await device.device?.close().catch(() => {});
    perf.step('close');
    perf.end();
  }
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
