// The relogin with the PIV card, staged: the one implementation the CLI (cli/relogin.ts) and Keyport Connect
// (main/backend/relogin.ts) share when a call is refused PRIVATE_KEY_POLICY_NOT_MET; issue 13 grows it into
// retryWithRelogin. Its steps:
//   1. the login ceremony for the profile's cluster and user (the caller's prompts: password, second factor,
//      the card's PIN, a new PIN and PUK), writing into a staging KEYPORT_HOME of its own (`.relogin-*`);
//      for a profile that signed in through an oidc connector, that SSO login again (the IdP's page in the
//      browser), refused unless the IdP signed the same user in;
//   2. a `Ping` signed by the new session's key (its proof of possession): on a YubiKey as on the lab card,
//      generating and attesting need no touch, so this is the card's first touch, and a touch refused or
//      never given fails here;
//   3. only then the new profile and the cluster record replace the old ones, and the old software key goes.
// Any failure (or the signal) before 3 leaves KEYPORT_HOME byte for byte as it was: the staging folder goes,
// and the card keeps its marked key for the next attempt.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyportError } from '../../proto/errors';
import { parseClusterAddress } from '../cluster-trust';
import type { CardSessions } from '../hardware/piv/card-sessions';
import type { PivPrompts } from '../hardware/piv/signer';
import { openKeyStore } from '../keystore';
import { ProfileStore } from '../profiles';
import type { Profile } from '../profiles';
import { connectAsProfile, notSignedIn } from '../session';
import { loginPasswordless, loginWithPassword } from './login';
import type { LoginOptions } from './login';
import { loginWithSso } from './sso-login';
import type { SsoLoginPrompts } from './sso-login';

export interface StagedReloginOptions {
  profiles: ProfileStore;
  /** The profile whose session is renewed (its cluster, user and keystore). */
  old: Profile;
  /** The login's prompts, signal, device and card options (its profiles, cluster, user and keystore are the old profile's). */
  login: Omit<LoginOptions, 'profiles' | 'address' | 'user' | 'keystore' | 'mfa'>;
  /**
   * How to sign in (default: the profile's oidc connector again where it has one, else the cluster's way, as
   * `keyport login` without --auth).
   */
  method?: 'password' | 'passwordless' | 'sso';
  /** With SSO: the browser's opener (or the printed URL), and the connector's security-key check. */
  sso?: Omit<SsoLoginPrompts, 'confirmCaPin'>;
  /** With a password: which second factor (the app's relogin prompt offers the login form's choice). */
  mfa?: LoginOptions['mfa'];
  /** The card's PIN and "Tap your YubiKey" for step 2's signature. */
  piv: PivPrompts;
  /** The process's long-lived card sessions (the app's), for step 2's signature. */
  cards?: CardSessions;
  /** Told once the card has signed for the new session (the app closes its touch prompt). */
  onSigned?(): void;
}

/**
 * Steps 1 to 3 above; resolves to the new profile once it is saved. As `keyport login` without --auth:
 * passwordless when the cluster says it is its way to sign in. A failure, or `login.signal` aborted before
 * step 3, throws (CANCELLED for the signal) with KEYPORT_HOME as it was.
 */
export async function stagedRelogin(options: StagedReloginOptions): Promise<Profile> {
  const { profiles, old, login } = options;
  const address = parseClusterAddress(old.address);
  const trusted = await profiles.getTrustedCluster(address);
  if (!trusted) throw notSignedIn(`sign in to ${old.address} again`);
  await removeStaleStaging(profiles.home);
  const staging = await mkdtemp(join(profiles.home, STAGING_PREFIX));
  try {
    const staged = new ProfileStore(staging);
    await staged.trustCluster(trusted);
    // 1. The login ceremony, into the staging home.
    const common = { ...login, profiles: staged, address, keystore: old.keystore };
    const method = options.method ?? defaultMethod(old, trusted.connectorName);
    const renewed =
      method === 'sso'
        ? await ssoAgain(options, staged, common)
        : method === 'passwordless'
          ? await loginPasswordless({ ...common, user: old.user })
          : await loginWithPassword({
              ...common,
              user: old.user,
              ...(options.mfa ? { mfa: options.mfa } : {}),
            });
    // A relogin renews this person's session: an IdP that signed someone else in does not replace it.
    if (renewed.user !== old.user) {
      if (!renewed.hardwareKey) {
        await openKeyStore(renewed.keystore, staging)
          .delete(renewed.keyId)
          .catch(() => false);
      }
      throw otherUser(old, renewed.user);
    }
    // 2. The card signs for the new session (its touch, its PIN), before anything of the old one goes.
    const api = await connectAsProfile(staged, renewed, undefined, {
      piv: options.piv,
      ...(options.cards ? { cards: options.cards } : {}),
    });
    try {
      await untilAborted(api.user.ping({}), login.signal);
    } finally {
      api.close();
    }
    options.onSigned?.();
    if (login.signal?.aborted) throw cancelled();
    // 3. The new session replaces the old one.
    const record = await staged.getTrustedCluster(address);
    if (record) await profiles.trustCluster(record);
    if (!renewed.hardwareKey) await moveSoftwareKey(staging, profiles.home, renewed);
    await profiles.saveProfile(renewed);
    if (!old.hardwareKey && old.keyId !== renewed.keyId) {
      await openKeyStore(old.keystore, profiles.home)
        .delete(old.keyId)
        .catch(() => false);
    }
    return renewed;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The profile's oidc connector again, where it signed in through one; else the cluster's way. */
export function defaultMethod(
  old: Profile,
  clusterConnector: string | undefined,
): 'password' | 'passwordless' | 'sso' {
  if (old.ssoConnector) return 'sso';
  return clusterConnector === 'passwordless' ? 'passwordless' : 'password';
}

/** Step 1 for an SSO profile: `keyport login --auth=NAME` again, into the staging home. */
function ssoAgain(
  options: StagedReloginOptions,
  staged: ProfileStore,
  common: Pick<LoginOptions, 'address' | 'keystore' | 'signal' | 'device'>,
): Promise<Profile> {
  const { old, sso } = options;
  if (!old.ssoConnector || !sso) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `Sign in to ${old.address} again with keyport login --auth=NAME.`,
    );
  }
  return loginWithSso({
    profiles: staged,
    address: common.address,
    keystore: common.keystore,
    connector: old.ssoConnector,
    ...(common.signal ? { signal: common.signal } : {}),
    ...(common.device !== undefined ? { device: common.device } : {}),
    // The cluster is trusted already (the staging home holds its record): nothing new is trusted here.
    prompts: { ...sso, confirmCaPin: () => Promise.resolve(false) },
  });
}

function otherUser(old: Profile, signedIn: string): KeyportError {
  return new KeyportError(
    'ACCESS_DENIED',
    `The identity provider signed you in as ${signedIn}, not ${old.user}: sign in there as ${old.user} to renew this session (your profile is as it was), or sign out and sign in as ${signedIn}.`,
  );
}

const STAGING_PREFIX = '.relogin-';
/** Longer than any relogin runs (each prompt expires after 5 minutes). */
const STALE_STAGING_MS = 60 * 60_000;

/**
 * A staging home left by a process that stopped mid-relogin may hold that login's software key (the `file`
 * keystore): removed once it is surely no relogin's any more.
 */
export async function removeStaleStaging(home: string, nowMs = Date.now()): Promise<void> {
  const names = await readdir(home).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(STAGING_PREFIX))) {
    const path = join(home, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isDirectory() && nowMs - info.mtimeMs > STALE_STAGING_MS) {
      await rm(path, { recursive: true, force: true });
    }
  }
}

/**
 * A relogin whose policy was lowered meanwhile ends with a software key: with the `file` keystore it sits
 * in the staging home and moves to the real one (the keychain is one store for both).
 */
async function moveSoftwareKey(from: string, to: string, profile: Profile): Promise<void> {
  if (profile.keystore !== 'file') return;
  const pem = await openKeyStore('file', from).get(profile.keyId);
  await openKeyStore('file', to).put(profile.keyId, pem);
}

function cancelled(): KeyportError {
  return new KeyportError('CANCELLED', 'Relogin cancelled: your profile is as it was.');
}

/** `work`, or CANCELLED as soon as `signal` aborts (a touch the person gives up waiting for). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(cancelled());
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}
