// A command refused because the session no longer meets the cluster's private-key policy (an admin raised
// it after the login) relogs in with the PIV card and runs once more, as `keyport login` does when its own
// Login is refused. Issue 13 grows this into `retryWithRelogin`, for every reason a relogin resolves (an
// expired certificate, a device or MFA requirement): the refusal is told apart here, and the relogin below
// is the one login ceremony every reason shares.
import type { PrivateKeyPolicy } from '../proto/resources/private-key-policy';
import { refusedKeyPolicy, reloginNotices } from '../client/ceremonies/hardware-key';
import { stagedRelogin } from '../client/ceremonies/relogin';
import { parseClusterAddress } from '../client/cluster-trust';
import type { Profile, ProfileStore } from '../client/profiles';
import { notSignedIn } from '../client/session';
import { cancelOnCtrlC } from './cancel';
import { pivPrompts } from './piv-prompts';
import type { Prompter } from './prompts';
import { securityKeyPrompts } from './security-key-prompts';

/**
 * Runs `action` (which reads the current profile itself); when a call of it is refused with
 * PRIVATE_KEY_POLICY_NOT_MET, says the seed's two lines, logs the profile's user in again on its cluster
 * with a session key on the PIV card meeting the policy the refusal names (password and second factor asked
 * again as `keyport login` asks them; passwordless when that is the cluster's default), and runs `action`
 * once more. Any other error, a failed relogin and a second refusal are thrown as they are; Ctrl-C during
 * the relogin throws CANCELLED. The profile changes only once the card has signed for the new session (a
 * refused touch, a wrong password or Ctrl-C leave KEYPORT_HOME byte for byte as it was).
 */
export async function withKeyPolicyRelogin<T>(
  profiles: ProfileStore,
  action: () => Promise<T>,
  prompter: Prompter,
): Promise<T> {
  try {
    return await action();
  } catch (error) {
    const policy = refusedKeyPolicy(error);
    if (policy === undefined || policy === 'none') throw error;
    const profile = await profiles.getProfile();
    if (!profile) throw error;
    await reloginForKeyPolicy(profiles, profile, policy, prompter);
  }
  return action();
}

/** The login ceremony again, for the profile's cluster and user, with the card's key for `policy`. */
async function reloginForKeyPolicy(
  profiles: ProfileStore,
  profile: Profile,
  policy: PrivateKeyPolicy,
  prompter: Prompter,
): Promise<Profile> {
  const said = reloginNotices(policy);
  for (const line of said) prompter.say(line);
  const address = parseClusterAddress(profile.address);
  const trusted = await profiles.getTrustedCluster(address);
  if (!trusted) throw notSignedIn();
  // Ctrl-C cancels the relogin: a question waiting for an answer is given up, and the ceremony unwinds (the
  // session key it made is taken back) before CANCELLED. A second Ctrl-C exits once that key is gone.
  const ctrlC = cancelOnCtrlC('Relogin cancelled: your profile is as it was.');
  const asking = ctrlC.prompter(prompter);
  const piv = pivPrompts(asking);
  let renewed: Profile;
  try {
    // Staged (client/ceremonies/relogin.ts): the new profile is saved only once the card has signed for it,
    // so a refused touch, a wrong password or Ctrl-C leaves KEYPORT_HOME as it was.
    renewed = await stagedRelogin({
      profiles,
      old: profile,
      login: {
        signal: ctrlC.signal,
        prompts: {
          // The cluster is trusted already (the refused call went to it): nothing new is trusted here.
          confirmCaPin: () => Promise.resolve(false),
          password: (name: string) => asking.secret(`Enter password for Keyport user ${name}:`),
          otpCode: () => asking.text('Enter an OTP code from your authenticator app:'),
          // The login says the two lines itself when it moves to the card: they were said already.
          notice: (message: string) => {
            const index = said.indexOf(message);
            if (index >= 0) said.splice(index, 1);
            else prompter.say(message);
          },
          securityKey: securityKeyPrompts(asking),
        },
        hardwareKey: {
          prompts: piv,
          ...(process.env.KEYPORT_PIV_SLOT ? { envSlot: process.env.KEYPORT_PIV_SLOT } : {}),
        },
      },
      piv,
    });
  } catch (error) {
    if (ctrlC.signal.aborted) return ctrlC.cancelled;
    throw error;
  } finally {
    ctrlC.dispose();
  }
  return renewed;
}
