// Profiles are shared with the keyport CLI (KEYPORT_HOME): a login or logout in a terminal must show in
// the app within a second. inotify (fs.watch) on the profile and cluster folders reports a change in
// milliseconds; a slow poll covers what inotify can miss (a watch limit reached, a folder replaced).
// Writers rename whole files into place (client/profiles.ts), so a read here never sees half a profile.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Profile, ProfileStore } from '../../client/profiles';

/** What the app reads of a profile; a file another version (or a person) wrote differently is skipped. */
const profileShape = z.looseObject({
  address: z.string(),
  cluster: z.string(),
  user: z.string(),
  roles: z.array(z.string()),
  logins: z.array(z.string()),
  mfaVerified: z.boolean(),
  validAfterMs: z.number(),
  expiresMs: z.number(),
  keystore: z.enum(['keychain', 'file']),
  // A session key on a PIV card: its keystore holds nothing of it, and the app shows slot and policy.
  hardwareKey: z
    .looseObject({
      slot: z.string(),
      policy: z.string(),
      pinPolicy: z.enum(['default', 'never', 'once', 'always']),
      touchPolicy: z.enum(['default', 'never', 'always', 'cached']),
      serial: z.number().optional(),
    })
    .optional(),
});

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

/** What identifies a session: a relogin changes the validity and the key, a logout removes the file. */
function fingerprint(profile: Profile): string {
  return JSON.stringify([
    profile.user,
    profile.validAfterMs,
    profile.expiresMs,
    profile.roles,
    profile.logins,
    profile.keystore,
    profile.hardwareKey ?? null,
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
    for (const profile of await profiles.listProfiles()) {
      if (profileShape.safeParse(profile).success) current.set(profile.address, profile);
    }
    if (closed) return;
    // Each report stands alone: a listener that throws for one profile does not hide the others, and a
    // profile is recorded as known only once reported, so a failed report is tried again next time.
    const report = (address: string, profile: Profile | null, print: string | undefined) => {
      try {
        options.onChange(address, profile);
        if (print === undefined) known.delete(address);
        else known.set(address, print);
      } catch {
        // Left unrecorded: retried on the next change or poll.
      }
    };
    for (const [address, profile] of current) {
      const print = fingerprint(profile);
      if (known.get(address) !== print) report(address, profile, print);
    }
    for (const address of [...known.keys()]) {
      if (!current.has(address)) report(address, null, undefined);
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
