import { execFile } from 'node:child_process';

export type DefaultCollectionState = 'unlocked' | 'locked' | 'missing' | 'unknown';

const DEFAULT_COLLECTION_PATH = '/org/freedesktop/secrets/aliases/default';

/**
 * Asks the Secret Service whether its default collection is locked, with `dbus-send` (package dbus-bin,
 * present wherever a session bus is). @napi-rs/keyring reports a missing item in a locked collection as
 * plain null, so a null read alone cannot tell "no key" from "keychain locked".
 * 'missing' is what a D-Bus-activated gnome-keyring without a login keyring reports; 'unknown' means the
 * question could not be asked (no dbus-send, unexpected reply).
 */
export function defaultCollectionState(
  env: NodeJS.ProcessEnv = process.env,
): Promise<DefaultCollectionState> {
  const args = [
    '--session',
    '--print-reply',
    '--dest=org.freedesktop.secrets',
    DEFAULT_COLLECTION_PATH,
    'org.freedesktop.DBus.Properties.Get',
    'string:org.freedesktop.Secret.Collection',
    'string:Locked',
  ];
  return new Promise((resolve) => {
    execFile('dbus-send', args, { env, timeout: 5_000 }, (error, stdout, stderr) => {
      if (!error) {
        if (/boolean true/.test(stdout)) resolve('locked');
        else if (/boolean false/.test(stdout)) resolve('unlocked');
        else resolve('unknown');
        return;
      }
      // gnome-keyring: "Object does not exist at path …"; the spec's generic answer: UnknownObject.
      resolve(/does not exist|UnknownObject|NoSuchObject/i.test(stderr) ? 'missing' : 'unknown');
    });
  });
}
