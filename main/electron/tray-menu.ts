// The tray's menu as data (issue 13): the trusted clusters with each one's session, "until HH:MM" or
// "signed out", a way to sign in again, "Open Keyport Connect" and "Quit". Pure: clusters, profiles and the
// time in, the items out; tray.ts turns them into Electron's menu and runs their actions. The labels say a
// cluster's name, a user and a time, nothing of a certificate or a key (invariant 1 holds for the tray too).
import type { ClusterView, ProfileView } from '../../preload/contract';
import { clockTime } from '../backend/relogin';

export type TrayAction =
  /** The backend's relogin for the profile of `address`, its prompt saying `reason`; the window shown. */
  | { kind: 'signInAgain'; address: string; reason: string[] }
  /** The window to the front (its login form, for a cluster signed out of). */
  | { kind: 'open' }
  | { kind: 'quit' };

export type TrayItem =
  | { kind: 'separator' }
  /** A line that says something and does nothing (disabled in the menu). */
  | { kind: 'status'; label: string }
  | { kind: 'action'; label: string; action: TrayAction };

export interface TrayMenuInput {
  clusters: readonly Pick<ClusterView, 'address' | 'name' | 'lastUser'>[];
  /** The signed-in profiles, by address (an expired one included: it can sign in again). */
  profiles: ReadonlyMap<string, Pick<ProfileView, 'address' | 'cluster' | 'user' | 'expiresMs'>>;
  /** Now on the service clock (proto/clock). */
  now: number;
}

export const OPEN_LABEL = 'Open Keyport Connect';
export const QUIT_LABEL = 'Quit';
export const NO_CLUSTERS_LABEL = 'No clusters yet';

export function trayMenu({ clusters, profiles, now }: TrayMenuInput): TrayItem[] {
  const entries = clusterEntries(clusters, profiles);
  const several = entries.length > 1;
  const items: TrayItem[] = [];
  for (const { address, name, user, profile } of entries) {
    const signedIn = profile !== undefined && now < profile.expiresMs;
    const state = signedIn ? `until ${clockTime(profile.expiresMs)}` : 'signed out';
    items.push({ kind: 'status', label: escapeMnemonics(`${name}: ${user ? `${user}, ` : ''}${state}`) });
    if (profile) {
      items.push({
        kind: 'action',
        label: escapeMnemonics(several ? `Sign in again to ${name}…` : 'Sign in again…'),
        action: { kind: 'signInAgain', address, reason: reloginReason(profile.expiresMs, now) },
      });
    } else {
      // No profile to renew: the app's login form signs in.
      items.push({
        kind: 'action',
        label: escapeMnemonics(several ? `Sign in to ${name}…` : 'Sign in…'),
        action: { kind: 'open' },
      });
    }
  }
  if (entries.length === 0) items.push({ kind: 'status', label: NO_CLUSTERS_LABEL });
  items.push(
    { kind: 'separator' },
    { kind: 'action', label: OPEN_LABEL, action: { kind: 'open' } },
    { kind: 'action', label: QUIT_LABEL, action: { kind: 'quit' } },
  );
  return items;
}

/** What the relogin prompt says when the person asked from the tray or a notification. */
export function reloginReason(expiresMs: number, now: number): string[] {
  return now >= expiresMs
    ? [`Your session ended at ${clockTime(expiresMs)}.`]
    : [`Your session ends at ${clockTime(expiresMs)}.`];
}

interface ClusterEntry {
  address: string;
  name: string;
  user: string | undefined;
  profile: Pick<ProfileView, 'user' | 'expiresMs'> | undefined;
}

/** Every trusted cluster, and a profile whose cluster record is gone, by name (then address). */
function clusterEntries(
  clusters: TrayMenuInput['clusters'],
  profiles: TrayMenuInput['profiles'],
): ClusterEntry[] {
  const entries = new Map<string, ClusterEntry>();
  for (const cluster of clusters) {
    const profile = profiles.get(cluster.address);
    entries.set(cluster.address, {
      address: cluster.address,
      name: cluster.name || cluster.address,
      user: profile?.user ?? cluster.lastUser,
      profile,
    });
  }
  for (const profile of profiles.values()) {
    if (entries.has(profile.address)) continue;
    entries.set(profile.address, {
      address: profile.address,
      name: profile.cluster || profile.address,
      user: profile.user,
      profile,
    });
  }
  return [...entries.values()].sort(
    (a, b) => a.name.localeCompare(b.name) || a.address.localeCompare(b.address),
  );
}

/**
 * Electron reads `&` in a menu label as the next letter's access key on Windows and Linux (`&&` is one `&`):
 * a cluster or user named with one would lose it and underline the next letter.
 */
export function escapeMnemonics(label: string): string {
  return label.replaceAll('&', '&&');
}
