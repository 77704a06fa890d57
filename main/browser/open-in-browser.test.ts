// openWithXdg runs `xdg-open URL` with the app's environment (here a stand-in xdg-open first on PATH, which
// records its arguments), and its failure says so without repeating the URL.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWithXdg } from './open-in-browser';

let dir: string;
const URL_WITH_TOKEN = 'https://localhost:3080/web/device/confirm?id=abc&token=secret-token-value';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyport-xdg-open-'));
  await writeFile(
    join(dir, 'xdg-open'),
    `#!/bin/sh\nif [ "$FAIL" = 1 ]; then exit 3; fi\nprintf '%s\\n' "$#" "$1" > "${dir}/args"\n`,
  );
  await chmod(join(dir, 'xdg-open'), 0o755);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('openWithXdg', () => {
  it('hands the URL to xdg-open as one argument', async () => {
    await openWithXdg({ ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` })(URL_WITH_TOKEN);
    expect(await readFile(join(dir, 'args'), 'utf8')).toBe(`1\n${URL_WITH_TOKEN}\n`);
  });

  it('fails with UNAVAILABLE and never repeats the URL', async () => {
    const error = await openWithXdg({ ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}`, FAIL: '1' })(
      URL_WITH_TOKEN,
    ).catch((e: unknown) => e as Error & { code: string });
    expect(error).toMatchObject({ code: 'UNAVAILABLE' });
    expect(String((error as Error).message)).toContain('exit status 3');
    expect(String((error as Error).message)).not.toContain('secret-token-value');
  });
});
