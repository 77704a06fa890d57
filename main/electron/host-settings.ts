// What the Electron host remembers between runs, in its own file under Electron's userData folder (not
// KEYPORT_HOME: it is this app's, not the CLI's). Today one flag: the "still running in the tray" notice was
// shown. A file that is missing, unreadable or not what this version wrote reads as the defaults; a write
// is a temp file renamed into place (0600), and a failed one only means the notice may show again.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

export const SETTINGS_FILE = 'keyport-connect-host.json';

const settingsSchema = z.object({ closedToTrayNoticeShown: z.boolean().default(false) });
export type HostSettings = z.infer<typeof settingsSchema>;

const defaults: HostSettings = { closedToTrayNoticeShown: false };

/** Read once at start, before the first window (a few bytes; synchronous, so no close comes before it). */
export function readHostSettings(userData: string): HostSettings {
  let text: string;
  try {
    text = readFileSync(join(userData, SETTINGS_FILE), 'utf8');
  } catch {
    return { ...defaults };
  }
  try {
    const parsed = settingsSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : { ...defaults };
  } catch {
    return { ...defaults };
  }
}

export async function writeHostSettings(userData: string, settings: HostSettings): Promise<void> {
  await mkdir(userData, { recursive: true, mode: 0o700 });
  const path = join(userData, SETTINGS_FILE);
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
