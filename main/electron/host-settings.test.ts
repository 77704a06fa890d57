import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readHostSettings, SETTINGS_FILE, writeHostSettings } from './host-settings';

const dirs: string[] = [];
function userData(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-host-settings-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('host settings', () => {
  it('reads the defaults where nothing was written', async () => {
    expect(readHostSettings(join(userData(), 'missing'))).toEqual({ closedToTrayNoticeShown: false });
  });

  it('writes 0600 in a folder it makes 0700, whole (no temp file left), and reads back what it wrote', async () => {
    const dir = join(userData(), 'Keyport Connect');
    await writeHostSettings(dir, { closedToTrayNoticeShown: true });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, SETTINGS_FILE)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual([SETTINGS_FILE]);
    expect(readHostSettings(dir)).toEqual({ closedToTrayNoticeShown: true });
  });

  it('reads a file that is not JSON, or not its shape, as the defaults', async () => {
    const dir = userData();
    for (const text of ['{not json', '[]', '{"closedToTrayNoticeShown":"yes"}', 'null']) {
      writeFileSync(join(dir, SETTINGS_FILE), text);
      expect(readHostSettings(dir), text).toEqual({ closedToTrayNoticeShown: false });
    }
  });

  it('a failed write throws and leaves no temp file behind', async () => {
    const dir = userData();
    // A folder where the file would go: the rename fails.
    mkdirSync(join(dir, SETTINGS_FILE));
    await expect(writeHostSettings(dir, { closedToTrayNoticeShown: true })).rejects.toThrow();
    expect(readdirSync(dir)).toEqual([SETTINGS_FILE]);
    expect(readHostSettings(dir)).toEqual({ closedToTrayNoticeShown: false });
  });
});
