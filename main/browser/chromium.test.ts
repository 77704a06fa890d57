// openAppWindow with a stand-in executable (KEYPORT_CHROMIUM): a shell script that records its arguments
// and starts a helper in the background, as Chromium starts its zygote. The real window is in
// browser.test.ts.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chromiumArguments,
  chromiumExecutable,
  DEFAULT_CHROMIUM,
  hasDisplay,
  launchPage,
  openAppWindow,
} from './chromium';

const TOKEN = 'Pr4EiazIFJuYZQkwK2kLwwZV7I1MNjr9KJim5q4dQsM';
const URL = `http://127.0.0.1:4321/#launch=${TOKEN}`;
const PAGE = 'file:///tmp/keyport-chromium-x/launch.html';

describe('chromiumArguments', () => {
  it('opens an app window on a private profile', () => {
    expect(chromiumArguments(PAGE, { profileDir: '/tmp/p', runningAsRoot: false })).toEqual([
      `--app=${PAGE}`,
      '--user-data-dir=/tmp/p',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--test-type',
    ]);
  });

  it('turns the sandbox off only as root', () => {
    const args = chromiumArguments(PAGE, { profileDir: '/tmp/p', runningAsRoot: true });
    expect(args.filter((arg) => arg === '--no-sandbox')).toHaveLength(1);
    expect(chromiumArguments(PAGE, { profileDir: '/tmp/p', runningAsRoot: false })).not.toContain(
      '--no-sandbox',
    );
  });
});

it('writes a launch page that redirects to the launch URL, escaped', () => {
  expect(launchPage(URL)).toContain(`<meta http-equiv="refresh" content="0;url=${URL}">`);
  expect(launchPage('http://127.0.0.1:1/"><script>&')).toContain(
    'url=http://127.0.0.1:1/&quot;&gt;&lt;script&gt;&amp;"',
  );
});

it('finds the executable and the display in the environment', () => {
  expect(chromiumExecutable({})).toBe(DEFAULT_CHROMIUM);
  expect(chromiumExecutable({ KEYPORT_CHROMIUM: '/opt/chromium' })).toBe('/opt/chromium');
  expect(hasDisplay({})).toBe(false);
  expect(hasDisplay({ DISPLAY: ':0' })).toBe(true);
  expect(hasDisplay({ WAYLAND_DISPLAY: 'wayland-0' })).toBe(true);
});

describe('openAppWindow', () => {
  let dir: string;
  let script: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyport-chromium-test-'));
    script = join(dir, 'fake-chromium.sh');
    await writeFile(
      script,
      [
        '#!/bin/sh',
        'printf "%s\\n" "$@" > "$ARGS_FILE.tmp"',
        'sleep 30 &',
        'echo $! > "$HELPER_PID_FILE"',
        'mv "$ARGS_FILE.tmp" "$ARGS_FILE"',
        'exec sleep 30',
        '',
      ].join('\n'),
    );
    await chmod(script, 0o755);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function waitForFile(path: string): Promise<string> {
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      try {
        return await readFile(path, 'utf8');
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    throw new Error(`${path} never appeared`);
  }

  /** Running, not a zombie waiting for init to reap it (Linux /proc). */
  const alive = async (pid: number) => {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  };

  it('returns undefined without a display (the caller prints the URL)', async () => {
    expect(await openAppWindow(URL, { env: { KEYPORT_CHROMIUM: script } })).toBeUndefined();
  });

  it('opens only the loopback host', async () => {
    await expect(openAppWindow('http://evil.example/', { env: { DISPLAY: ':99' } })).rejects.toThrow(
      /loopback/,
    );
  });

  it('starts the browser on a fresh private profile via the launch page, and close() ends it and its helpers', async () => {
    const argsFile = join(dir, 'args.txt');
    const helperPidFile = join(dir, 'helper.pid');
    const window = await openAppWindow(URL, {
      env: {
        PATH: process.env.PATH,
        DISPLAY: ':99',
        KEYPORT_CHROMIUM: script,
        ARGS_FILE: argsFile,
        HELPER_PID_FILE: helperPidFile,
      },
    });
    if (!window) throw new Error('no window');
    try {
      const args = (await waitForFile(argsFile)).trim().split('\n');
      expect(args).toEqual(
        chromiumArguments(pathToFileURL(window.launchFile).href, {
          profileDir: window.profileDir,
          runningAsRoot: process.getuid?.() === 0,
        }),
      );
      // The token is not on the command line (readable by every local user), only in the private page.
      expect(args.join(' ')).not.toContain(TOKEN);
      expect(await readFile(window.launchFile, 'utf8')).toBe(launchPage(URL));
      expect((await stat(window.dir)).mode & 0o777).toBe(0o700);
      expect((await stat(window.profileDir)).mode & 0o777).toBe(0o700);
      expect((await stat(window.launchFile)).mode & 0o777).toBe(0o600);
      const helper = Number((await readFile(helperPidFile, 'utf8')).trim());
      expect(await alive(helper)).toBe(true);

      await window.close();
      await window.exited;
      expect(await alive(helper)).toBe(false);
      await expect(stat(window.dir)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await window.close();
    }
  });

  it('says which executable it could not start', async () => {
    await expect(
      openAppWindow(URL, { env: { DISPLAY: ':99', KEYPORT_CHROMIUM: join(dir, 'no-such-chromium') } }),
    ).rejects.toThrow(/Cannot start Chromium .*no-such-chromium.*KEYPORT_CHROMIUM/);
  });
});
