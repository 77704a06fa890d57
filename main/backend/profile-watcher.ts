// Profiles are shared with the keyport CLI (KEYPORT_HOME): a login or logout in a terminal must show in
// the app within a second. inotify (fs.watch) on the profile and cluster folders reports a change in
// milliseconds; a slow poll covers what inotify can miss (a watch limit reached, a folder replaced).
// Writers rename whole files into place (client/profiles.ts), so a read here never sees half a profile.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Profile, ProfileStore } from '../../client/profiles';

export interface ProfileWatcher {
  /** Reads the profiles now and reports what changed since the last read. */
  refresh(): Promise<void>;
  close(): void;
}

export interface ProfileWatcherOptions {
  /** Called once per address whose profile appeared, changed or disappeared (null). */
  onChange(address: string, profile: Profile | null): void;
  debounceMs?: number;
  pollMs?: number;
}

/** What identifies a session: a relogin changes the validity, a logout removes the file. */
function fingerprint(profile: Profile): string {
  return JSON.stringify([
    profile.user,
    profile.validAfterMs,
    profile.expiresMs,
    profile.roles,
    profile.logins,
  ]);
}

export async function watchProfiles(
  profiles: ProfileStore,
  options: ProfileWatcherOptions,
): Promise<ProfileWatcher> {
  const debounceMs = options.debounceMs ?? 50;
  const known = new Map<string, string>();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;

  const read = async () => {
    const current = new Map<string, Profile>();
    for (const profile of await profiles.listProfiles()) current.set(profile.address, profile);
    if (closed) return;
    for (const [address, profile] of current) {
      const print = fingerprint(profile);
      if (known.get(address) === print) continue;
      known.set(address, print);
      options.onChange(address, profile);
    }
    for (const address of [...known.keys()]) {
      if (current.has(address)) continue;
      known.delete(address);
      options.onChange(address, null);
    }
  };

  // One read at a time; a change during a read schedules one more.
  const refresh = async (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await read().catch(() => undefined);
        } while (again && !closed);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void refresh(), debounceMs);
  };

  // Folders are created up front so they can be watched before the first login.
  const folders = [profiles.home, join(profiles.home, 'profiles'), join(profiles.home, 'clusters')];
  for (const folder of folders) await mkdir(folder, { recursive: true, mode: 0o700 });
  await read().catch(() => undefined);
  const watchers: FSWatcher[] = [];
  for (const folder of folders) {
    try {
      const watcher = watch(folder, { persistent: false }, schedule);
      watcher.on('error', () => undefined);
      watchers.push(watcher);
    } catch {
      // No inotify watch left: the poll below still notices, only later.
    }
  }
  const poll = setInterval(schedule, options.pollMs ?? 2000);
  poll.unref();

  return {
    refresh,
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
    },
  };
}
