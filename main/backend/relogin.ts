// Relogin as a mechanism (issue 13): `retryWithRelogin(cluster, action)` runs every handler of the
// backend (createBackend's bind). An error the cluster (or the client core) marks resolvable by relogin
// (proto/errors.ts `resolvableByRelogin`: an expired certificate, PRIVATE_KEY_POLICY_NOT_MET, a trusted
// device newly required, a certificate the cluster no longer accepts) starts a relogin for that cluster,
// and the action runs once more after it succeeds. A second failure is the action's answer, as it is.
//
// One relogin per cluster at a time: actions refused while it runs join it (one prompt for all of them),
// and a cancelled or failed relogin fails every one of them with its error (CANCELLED for a cancel),
// as it does an action that was already running then and is refused after it (no second prompt). An
// action refused after a relogin finished during it runs again without asking (its session was renewed
// under it). The relogin has a ceremony of its own, not the action's, since several actions share it:
//   1. asks the person to sign in again, saying why (a `relogin` prompt: "Your session ended at 14:02",
//      the seed's two lines for a raised key policy) and offering the login screen's factors (the password
//      and a choice of second factor; passwordless where the cluster allows it or makes it its default; for a
//      session signed in through an oidc connector, only "Sign in with DISPLAY");
//   2. runs the login ceremony for the profile's cluster and user (the second factor asked again; the
//      PIV card's key, PIN and touch where the cluster requires a hardware key), writing into a staging
//      KEYPORT_HOME of its own (an SSO session: the SSO login again, the IdP's page opened by the host's
//      opener with the browserSignIn prompt, refused unless the IdP signed the same user in);
//   3. proves the new session's key signs (a `Ping` with a proof of possession: a card's touch);
//   4. only then puts the new profile and the cluster record in place of the old ones.
// Steps 2 to 4 are client/ceremonies/relogin.ts (stagedRelogin), which the CLI's relogin runs too. Any
// failure before 4 leaves KEYPORT_HOME as it was.
import { KeyportError } from '../../proto/errors';
import { isPrivateKeyPolicy } from '../../proto/resources/private-key-policy';
import { reloginNotices } from '../../client/ceremonies/hardware-key';
import { RELOGIN_NOTICE } from '../../client/ceremonies/hardware-key';
import { stagedRelogin } from '../../client/ceremonies/relogin';
import { formatClusterAddress, parseClusterAddress } from '../../client/cluster-trust';
import type { CardSessions } from '../../client/hardware/piv/card-sessions';
import type { ProfileStore } from '../../client/profiles';
import type { Profile } from '../../client/profiles';
import { notSignedIn } from '../../client/session';
import type { ReloginCause } from '../../preload/contract';
import type { CeremonyPrompts } from './prompt-broker';
import type { SsoLoginSteps } from './sso-login';
import { clusterView } from './views';

export interface ReloginOptions {
  profiles: ProfileStore;
  env: NodeJS.ProcessEnv;
  /** The app's long-lived card sessions: the new key's first signature leaves its PIN verified there. */
  cards?: CardSessions;
  /** Prompts for one relogin (the broker's ceremony): shared by every action waiting for it. */
  ceremony(): CeremonyPrompts;
  /** Told of the new profile once it has replaced the old one. */
  onRenewed(profile: Profile): void;
  /** The SSO login's display and browser opener, for a session signed in through an oidc connector. */
  sso?: Pick<SsoLoginSteps, 'display' | 'opener'>;
}

export interface Relogin {
  /**
   * Runs `action` as the profile of `cluster` (the current one when undefined); when it fails with an
   * error resolvable by relogin and that profile exists, signs in again (or joins the relogin running for
   * the cluster) and runs `action` exactly once more. Any other error is thrown as it is.
   */
  retryWithRelogin<T>(cluster: string | undefined, action: () => Promise<T>): Promise<T>;
  /**
   * Signs in to `cluster` again, saying `reason` (the dialog words it by `cause`, default `other`), or
   * joins the relogin running for it.
   */
  signInAgain(cluster: string, reason: string[], cause?: ReloginCause): Promise<Profile>;
}

/** Whether signing in again can resolve `error` (the flag the cluster and the client core set). */
export function resolvableByRelogin(error: unknown): error is KeyportError {
  return error instanceof KeyportError && error.fields.resolvableByRelogin === true;
}

export function createRelogin(options: ReloginOptions): Relogin {
  const { profiles } = options;
  const running = new Map<string, Promise<Profile>>();
  // Bumped by every relogin that succeeds: an action refused after one finished runs again without asking.
  let renewals = 0;
  // Bumped by every relogin that fails or is cancelled, with its error kept per cluster: an action that was
  // already running when the person cancelled, and is refused after, gets that answer too, not a new prompt.
  let failures = 0;
  const lastFailure = new Map<string, { seq: number; error: unknown }>();

  function signInAgain(address: string, reason: string[], cause: ReloginCause): Promise<Profile> {
    let relogin = running.get(address);
    if (!relogin) {
      relogin = (async () => {
        const old = await profiles.getProfile(address);
        if (!old) throw notSignedIn(`sign in to ${address} again`);
        const prompts = options.ceremony();
        try {
          const renewed = await reloginSteps(options, prompts, old, { reason, cause });
          renewals += 1;
          return renewed;
        } finally {
          prompts.finish();
        }
      })()
        .catch((error: unknown) => {
          failures += 1;
          lastFailure.set(address, { seq: failures, error });
          throw error;
        })
        .finally(() => running.delete(address));
      running.set(address, relogin);
    }
    return relogin;
  }

  return {
    async retryWithRelogin(cluster, action) {
      const renewalsBefore = renewals;
      const failuresBefore = failures;
      try {
        return await action();
      } catch (error) {
        if (!resolvableByRelogin(error)) throw error;
        const profile = await profiles.getProfile(normalize(cluster)).catch(() => undefined);
        if (!profile) throw error;
        const failed = lastFailure.get(profile.address);
        if (running.has(profile.address)) {
          await signInAgain(profile.address, reasonFor(error, profile), causeOf(error));
        } else if (failed !== undefined && failed.seq > failuresBefore) {
          // A relogin for this cluster failed or was cancelled while this action ran: the same answer.
          throw failed.error;
        } else if (renewals === renewalsBefore) {
          await signInAgain(profile.address, reasonFor(error, profile), causeOf(error));
        }
      }
      return action();
    },
    signInAgain: (cluster, reason, cause = 'other') =>
      signInAgain(formatClusterAddress(parseClusterAddress(cluster)), reason, cause),
  };
}

function normalize(cluster: string | undefined): string | undefined {
  return cluster === undefined ? undefined : formatClusterAddress(parseClusterAddress(cluster));
}

/** What the relogin prompt says: why this session cannot go on. */
export function reasonFor(error: KeyportError, profile: Profile): string[] {
  const policy = error.code === 'PRIVATE_KEY_POLICY_NOT_MET' ? error.fields.privateKeyPolicy : undefined;
  if (policy && isPrivateKeyPolicy(policy) && policy !== 'none') return reloginNotices(policy);
  if (error.code === 'CERTIFICATE_EXPIRED') return [`Your session ended at ${clockTime(profile.expiresMs)}.`];
  return [error.message];
}

/** Why, for the dialog's words: the error's code (a policy refusal naming no policy is another). */
export function causeOf(error: KeyportError): ReloginCause {
  if (error.code === 'CERTIFICATE_EXPIRED') return 'expired';
  if (error.code === 'DEVICE_TRUST_REQUIRED') return 'deviceTrust';
  const policy = error.code === 'PRIVATE_KEY_POLICY_NOT_MET' ? error.fields.privateKeyPolicy : undefined;
  return policy && isPrivateKeyPolicy(policy) && policy !== 'none' ? 'keyPolicy' : 'other';
}

/**
 * What the prompt says when the person asks to sign in again (the banner's "Sign in again"): the session
 * ended at HH:MM, or ends then.
 */
export function earlyReason(profile: Profile, nowMs: number): { reason: string[]; cause: ReloginCause } {
  const at = clockTime(profile.expiresMs);
  return nowMs >= profile.expiresMs
    ? { reason: [`Your session ended at ${at}.`], cause: 'expired' }
    : { reason: [`Your session ends at ${at}.`], cause: 'endsSoon' };
}

/** HH:MM in the machine's time zone, as the person's clock shows it. */
export function clockTime(ms: number): string {
  const at = new Date(ms);
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

/**
 * A login's notices for the app: the seed's two lines (`Unmet private key policy "…".`, then `Relogging in
 * with hardware-backed private key.`) shown as one notice, since a notice replaces the one before it.
 */
export function seedNotice(prompts: Pick<CeremonyPrompts, 'notice'>): (message: string) => void {
  let unmet: string | undefined;
  return (message) => {
    if (message.startsWith('Unmet private key policy')) {
      unmet = message;
      return;
    }
    if (message === RELOGIN_NOTICE && unmet) {
      // The notice dialog ends its line with "…".
      prompts.notice(`${unmet} ${RELOGIN_NOTICE.replace(/\.$/, '')}`);
      unmet = undefined;
      return;
    }
    prompts.notice(message);
  };
}

/** Steps 1 to 4 above, in the relogin's own ceremony; resolves to the new profile. */
async function reloginSteps(
  options: ReloginOptions,
  prompts: CeremonyPrompts,
  old: Profile,
  why: { reason: string[]; cause: ReloginCause },
): Promise<Profile> {
  const { profiles, env } = options;
  const said = why.reason;
  const address = parseClusterAddress(old.address);
  const trusted = await profiles.getTrustedCluster(address);
  if (!trusted) throw notSignedIn(`sign in to ${old.address} again`);
  const { passwordlessDefault, secondFactors, allowPasswordless } = clusterView(trusted);
  const connector = old.ssoConnector;
  // 1. The explanation, and the login screen's factors: the password (never kept: it goes with this login
  // only) and the second factor chosen, or passwordless; an SSO session's connector alone.
  const { password, secondFactor } = await prompts.relogin({
    cluster: old.address,
    user: old.user,
    reason: said,
    cause: why.cause,
    ...(connector
      ? {
          passwordless: false,
          secondFactors: [],
          allowPasswordless: false,
          sso: { connector, display: (await options.sso?.display(old.address, connector)) ?? connector },
        }
      : {
          passwordless: passwordlessDefault,
          secondFactors,
          // Passwordless needs a security key the cluster accepts (second_factor "off" has none).
          allowPasswordless: allowPasswordless && secondFactors.includes('webauthn'),
        }),
  });
  const method = connector ? 'sso' : password === undefined ? 'passwordless' : 'password';

  try {
    // 2–4. The login into a staging home, the card's first signature, and only then the new profile.
    const renewed = await stagedRelogin({
      profiles,
      old,
      method,
      ...(secondFactor ? { mfa: secondFactor } : {}),
      ...(connector && options.sso
        ? {
            sso: {
              openBrowser: options.sso.opener(prompts, { address: old.address, connector }),
              notice: prompts.notice,
              securityKey: prompts.securityKey,
            },
          }
        : {}),
      login: {
        signal: prompts.signal,
        device: { env },
        prompts: {
          ...prompts,
          password: async () => password ?? '',
          // The login says the two lines itself when it moves to the card: the relogin prompt said them.
          notice: (message: string) => {
            if (!said.includes(message)) prompts.notice(message);
          },
        },
        hardwareKey: {
          prompts: prompts.piv,
          ...(env.KEYPORT_PIV_SLOT ? { envSlot: env.KEYPORT_PIV_SLOT } : {}),
        },
      },
      piv: prompts.piv,
      ...(options.cards ? { cards: options.cards } : {}),
      // "Tap your YubiKey" is over once the card has signed.
      onSigned: () => prompts.progressDone(),
    });
    options.onRenewed(renewed);
    return renewed;
  } catch (error) {
    if (prompts.signal.aborted) {
      throw new KeyportError('CANCELLED', 'Sign-in cancelled: your session is as it was.');
    }
    throw error;
  }
}
