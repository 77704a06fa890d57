// A command refused for a reason a relogin resolves (proto/errors.ts resolvableByRelogin: an expired
// certificate, a raised private-key policy, a trusted device newly required) signs in again and runs once
// more. When Keyport Connect runs for this KEYPORT_HOME, the CLI asks it (client/app-relogin.ts): the
// person signs in in the app, and the command goes on with the profile the app saved, no password typed
// here. Without the app (or with --no-app-relogin), a session that signed in through an oidc connector
// runs `keyport login --auth=NAME` again here (the browser, or the URL printed with KEYPORT_BROWSER=none);
// a refusal for the key policy relogs in here with the PIV card, as `keyport login` does when its own Login
// is refused; other refusals are shown as they are.
import type { PrivateKeyPolicy } from '../proto/resources/private-key-policy';
import { KeyportError } from '../proto/errors';
import { askAppToRelogin } from '../client/app-relogin';
import { refusedKeyPolicy, reloginNotices } from '../client/ceremonies/hardware-key';
import { stagedRelogin } from '../client/ceremonies/relogin';
import { parseClusterAddress } from '../client/cluster-trust';
import type { Profile, ProfileStore } from '../client/profiles';
import { notSignedIn } from '../client/session';
import { openSignInUrl } from './browser';
import { cancelOnCtrlC } from './cancel';
import { pivPrompts } from './piv-prompts';
import type { Prompter } from './prompts';
import { securityKeyPrompts } from './security-key-prompts';

let appReloginEnabled = true;

/** `--no-app-relogin`: never ask Keyport Connect; the terminal's relogin (or the error) as before. */
export function setAppRelogin(enabled: boolean): void {
  appReloginEnabled = enabled;
}

/**
 * Asks Keyport Connect, when it runs for this KEYPORT_HOME, to sign in to `profile`'s cluster again, and
 * waits for the person to do it there. The new profile; undefined when no app runs or --no-app-relogin.
 * The app's refusal (CANCELLED for a cancelled prompt) is thrown.
 */
export async function reloginThroughApp(
  profiles: ProfileStore,
  profile: Profile,
  prompter: Prompter,
): Promise<Profile | undefined> {
  if (!appReloginEnabled) return undefined;
  const asked = await askAppToRelogin(profiles.home, profile.address, {
    onAsked: () =>
      prompter.say(
        `Sign in to ${profile.address} again in Keyport Connect; this command goes on after it (--no-app-relogin signs in here).`,
      ),
  });
  if (!asked) return undefined;
  const renewed = await profiles.getProfile(profile.address);
  if (!renewed) throw notSignedIn();
  return renewed;
}

/**
 * Runs `action` (which reads the current profile itself); when a call of it is refused for a reason a
 * relogin resolves, asks Keyport Connect to sign in again where it runs (reloginThroughApp). Otherwise,
 * for a refusal with PRIVATE_KEY_POLICY_NOT_MET, says the seed's two lines, logs the profile's user in again on its cluster
 * with a session key on the PIV card meeting the policy the refusal names (password and second factor asked
 * again as `keyport login` asks them; passwordless when that is the cluster's default), and runs `action`
 * once more. Any other error, a failed relogin and a second refusal are thrown as they are; Ctrl-C during
 * the relogin throws CANCELLED. The profile changes only once the card has signed for the new session (a
 * refused touch, a wrong password or Ctrl-C leave KEYPORT_HOME byte for byte as it was).
 */
export async function withRelogin<T>(
  profiles: ProfileStore,
  action: () => Promise<T>,
  prompter: Prompter,
): Promise<T> {
  try {
    return await action();
  } catch (error) {
    const policy = refusedKeyPolicy(error);
    const byKeyPolicy = policy !== undefined && policy !== 'none';
    const resolvable = error instanceof KeyportError && error.fields.resolvableByRelogin === true;
    if (!byKeyPolicy && !resolvable) throw error;
    const profile = await profiles.getProfile();
    if (!profile) throw error;
    const renewed = await reloginThroughApp(profiles, profile, prompter);
    if (!renewed) {
      if (profile.ssoConnector && sessionEnded(error))
        await reloginWithSso(profiles, profile, error, prompter);
      else if (!byKeyPolicy) throw error;
      else await reloginForKeyPolicy(profiles, profile, policy, prompter);
    }
  }
  return action();
}

/**
 * The session itself is over (expired, or no longer this cluster's): what a terminal SSO relogin renews. A
 * trusted device newly required is not: the relogin would offer the IdP this same machine's TPM, which the
 * login already offered, so it would open a browser only to be refused again.
 */
function sessionEnded(error: unknown): boolean {
  return (
    error instanceof KeyportError &&
    (error.code === 'CERTIFICATE_EXPIRED' || error.code === 'UNAUTHENTICATED')
  );
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

/**
 * An SSO session's relogin in the terminal: `keyport login --auth=NAME` again for the profile's connector,
 * staged (the IdP signing in someone else, Ctrl-C or a refusal leave KEYPORT_HOME as it was).
 */
export async function reloginWithSso(
  profiles: ProfileStore,
  profile: Profile,
  why: unknown,
  prompter: Prompter,
): Promise<Profile> {
  const connector = profile.ssoConnector ?? '';
  if (why instanceof Error) prompter.say(why.message);
  prompter.say(
    `Signing in to ${profile.address} again as ${profile.user} (keyport login --auth=${connector}).`,
  );
  const ctrlC = cancelOnCtrlC('Relogin cancelled: your profile is as it was.');
  const asking = ctrlC.prompter(prompter);
  const piv = pivPrompts(asking);
  try {
    return await stagedRelogin({
      profiles,
      old: profile,
      method: 'sso',
      login: {
        signal: ctrlC.signal,
        prompts: {
          confirmCaPin: () => Promise.resolve(false),
          otpCode: () =>
            Promise.reject(new KeyportError('INVALID_ARGUMENT', 'An SSO login asks no OTP code.')),
          password: () =>
            Promise.reject(new KeyportError('INVALID_ARGUMENT', 'An SSO login asks no password.')),
          notice: (message: string) => prompter.say(message),
          securityKey: securityKeyPrompts(asking),
        },
      },
      sso: {
        openBrowser: (url: string) => openSignInUrl(url, process.env.KEYPORT_BROWSER === 'none', prompter),
        notice: (message: string) => prompter.say(message),
        securityKey: securityKeyPrompts(asking),
      },
      piv,
    });
  } catch (error) {
    if (ctrlC.signal.aborted) return ctrlC.cancelled;
    throw error;
  } finally {
    ctrlC.dispose();
  }
}
