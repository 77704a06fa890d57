// A call refused because the session's key no longer meets the cluster's private-key policy (an admin
// raised it after the login) relogs in with the PIV card and runs once more: the app's side of
// cli/relogin.ts, in one place, which issue 13 grows into `retryWithRelogin` for every reason a relogin
// resolves. The relogin:
//   1. asks the person to sign in again, saying the seed's two lines (a `relogin` prompt: the password for a
//      password cluster, nothing for a passwordless one);
//   2. runs the login ceremony for the profile's cluster and user with the card's key (the second factor
//      asked again, "Tap your YubiKey", the PIV PIN, a new PIN and PUK for a card on the factory ones),
//      writing into a staging KEYPORT_HOME of its own;
//   3. proves the card signs for the new session (a `Ping` with a proof of possession: the touch the key's
//      policy asks for), so a touch refused or never given fails here;
//   4. only then puts the new profile and the cluster record in place of the old ones and deletes the old
//      software key.
// Steps 2 to 4 are client/ceremonies/relogin.ts (stagedRelogin), which the CLI's relogin runs too.
// Any failure before 4 leaves KEYPORT_HOME as it was (the staging folder goes); the card keeps its marked
// key for the next attempt. Refusals that arrive while a relogin runs wait for it instead of starting
// another.
import { KeyportError } from '../../proto/errors';
import { policySatisfies } from '../../proto/resources/private-key-policy';
import type { PrivateKeyPolicy } from '../../proto/resources/private-key-policy';
import { RELOGIN_NOTICE, refusedKeyPolicy, reloginNotices } from '../../client/ceremonies/hardware-key';
import { stagedRelogin } from '../../client/ceremonies/relogin';
import { parseClusterAddress } from '../../client/cluster-trust';
import type { CardSessions } from '../../client/hardware/piv/card-sessions';
import type { ProfileStore } from '../../client/profiles';
import type { Profile } from '../../client/profiles';
import { notSignedIn } from '../../client/session';
import type { CeremonyPrompts } from './prompt-broker';

export interface KeyPolicyReloginOptions {
  profiles: ProfileStore;
  env: NodeJS.ProcessEnv;
  /** The app's long-lived card sessions: the new key's first signature leaves its PIN verified there. */
  cards?: CardSessions;
  /** Told of the new profile once it has replaced the old one. */
  onRenewed(profile: Profile): void;
}

/**
 * Runs `action`; when it is refused with PRIVATE_KEY_POLICY_NOT_MET, relogs in with the card (steps above)
 * and runs it once more. `address` is the profile the action acts as (the current one when omitted). Any
 * other error, a failed relogin and a second refusal are thrown as they are.
 */
export type WithKeyPolicyRelogin = <T>(
  prompts: CeremonyPrompts,
  action: () => Promise<T>,
  address?: string,
) => Promise<T>;

export function keyPolicyRelogin(options: KeyPolicyReloginOptions): WithKeyPolicyRelogin {
  const { profiles } = options;
  const running = new Map<string, Promise<void>>();

  return async (prompts, action, address) => {
    try {
      return await action();
    } catch (error) {
      const policy = refusedKeyPolicy(error);
      if (policy === undefined || policy === 'none') throw error;
      const profile = await profiles.getProfile(address);
      if (!profile) throw error;
      // A relogin that ended after this call started may have made a key that meets the policy already.
      if (!meets(profile, policy)) {
        let relogin = running.get(profile.address);
        if (!relogin) {
          relogin = reloginWithCard(options, prompts, profile, policy).finally(() =>
            running.delete(profile.address),
          );
          running.set(profile.address, relogin);
        }
        await relogin;
      }
    }
    return action();
  };
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

function meets(profile: Profile, policy: PrivateKeyPolicy): boolean {
  const met = profile.hardwareKey?.policy;
  return met !== undefined && policySatisfies(met as PrivateKeyPolicy, policy);
}

async function reloginWithCard(
  options: KeyPolicyReloginOptions,
  prompts: CeremonyPrompts,
  old: Profile,
  policy: PrivateKeyPolicy,
): Promise<void> {
  const { profiles, env } = options;
  const address = parseClusterAddress(old.address);
  const trusted = await profiles.getTrustedCluster(address);
  if (!trusted) throw notSignedIn(`sign in to ${old.address} again`);
  const passwordless = trusted.connectorName === 'passwordless';
  const said = reloginNotices(policy);
  // 1. The explanation, and the password (never kept: it goes with this login only).
  const password = await prompts.relogin({
    cluster: old.address,
    user: old.user,
    reason: said,
    passwordless,
  });

  try {
    // 2–4. The login into a staging home, the card's first signature, and only then the new profile.
    const renewed = await stagedRelogin({
      profiles,
      old,
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
  } catch (error) {
    if (prompts.signal.aborted) {
      throw new KeyportError('CANCELLED', 'Sign-in cancelled: your session is as it was.');
    }
    throw error;
  }
}
