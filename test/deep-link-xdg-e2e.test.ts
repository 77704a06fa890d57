// keyport:// links on a Linux desktop, end to end: the real `xdg-open` (xdg-utils) with private XDG folders
// finds the desktop entry lab/xdg.ts installed, runs `keyport-connect open-url LINK` (bin/keyport-connect.mjs),
// which hands the link over the link socket to the running app (the browser host, started by
// `keyport-connect` itself), whose window, driven by Playwright in Chromium, shows the screen the link fills
// in. Screenshots in test-results/deep-link-xdg-e2e/.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../client/profiles';
import { launchLabChromium } from '../lab/chromium';
import { repoRoot } from '../lab/cluster';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { checkoutLinkHandler, installLinkHandler } from '../lab/xdg';
import type { PrivateXdg } from '../lab/xdg';

const shots = join(repoRoot, 'test-results', 'deep-link-xdg-e2e');
const TOKEN = 'web-token_0123456789abcdefghij';
const link = (id: string, cluster = 'lab') =>
  `keyport://${cluster}/authorize-web-session?id=${id}&token=${TOKEN}&redirect=%2Fweb%2Fhome`;

let work: string;
let home: string;
let xdg: PrivateXdg;
let browser: Browser;
let page: Page;
const apps: ChildProcess[] = [];

const screenshot = screenshotter(() => page, shots);

/** The environment of a Keyport Connect process: this test's home, and no display (the URL is printed). */
function appEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, KEYPORT_HOME: home };
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  return env;
}

/** Runs `keyport-connect ARGS` and resolves with the launch URL it prints once the app is up. */
async function startApp(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'keyport-connect.mjs'), ...args], {
    env: appEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  apps.push(child);
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /http:\/\/127\.0\.0\.1:\d+\/#launch=\S+/.exec(output);
      if (match) resolve(match[0]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`keyport-connect exited (${code}): ${output}`)));
  });
  // The link's text is never printed.
  expect(output).not.toContain(TOKEN);
  return { child, url };
}

async function stopApp(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The real xdg-open, with the private XDG folders and a display name (its generic path needs one set). */
function xdgOpen(url: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'xdg-open',
      [url],
      // No KEYPORT_HOME: the desktop entry carries it, as a desktop would start it without the app's env.
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...xdg.env, DISPLAY: ':77' }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number((error as { code?: number }).code ?? 1) : 0,
          output: stdout + stderr,
        }),
    );
  });
}

const heading = (name: string) => page.getByRole('heading', { level: 2, name });

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-xdg-'));
  home = join(work, 'home');
  await new ProfileStore(home).trustCluster({
    address: '127.0.0.1:3025',
    name: 'lab',
    caPin: `sha256:${'a'.repeat(64)}`,
    caPem: 'pem',
    trustedAtMs: 1,
  });
  xdg = await installLinkHandler(join(work, 'xdg'), checkoutLinkHandler(home));
  browser = await launchLabChromium();
}, 120_000);

afterAll(async () => {
  for (const child of apps) await stopApp(child);
  await browser?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('keyport:// links through xdg-open', () => {
  it('xdg-open hands the link to the running app, whose window shows the screen it fills in', async () => {
    const app = await startApp([]);
    page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    page.setDefaultTimeout(60_000);
    await page.goto(app.url);
    await heading('Sign in to lab').waitFor();

    const opened = await xdgOpen(link('req-1'));
    expect(opened, opened.output).toMatchObject({ code: 0 });
    await heading('Verify a browser').waitFor();
    const screen = page.getByRole('region', { name: 'Verify a browser' });
    await expect.poll(() => screen.textContent()).toContain('A browser asks to be verified by this device.');
    expect(await screen.textContent()).toContain('lab (127.0.0.1:3025)');
    expect(await screen.textContent()).toContain('req-1');
    // Signed out: the screen asks for a sign-in in place first (the request kept), no Authorize yet.
    await expect.poll(() => screen.textContent()).toContain('Sign in to lab to see what this browser asks.');
    expect(await page.getByRole('button', { name: 'Authorize' }).count()).toBe(0);
    // The token stayed in the backend: not in the page, not in its address.
    expect(await page.content()).not.toContain(TOKEN);
    expect(page.url()).not.toContain(TOKEN);
    await screenshot('authorize-web-session');
    expect(await accessibilityFindings(page)).toEqual([]);

    // A link for a cluster the app does not know: xdg-open's handler says so, and so does the window.
    const refused = await xdgOpen(link('req-2', 'elsewhere'));
    expect(refused.code).not.toBe(0);
    expect(refused.output).not.toContain(TOKEN);
    await heading('This link cannot be opened').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('does not know');
    await screenshot('refused-link');
    expect(await accessibilityFindings(page)).toEqual([]);
    await page.getByRole('button', { name: 'Close' }).click();
    await heading('Sign in to lab').waitFor();

    await page.close();
    await stopApp(app.child);
  }, 240_000);

  it('with no app running, open-url starts it with the link on its first screen; the next link goes to it', async () => {
    const app = await startApp(['open-url', link('req-3')]);
    page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    page.setDefaultTimeout(60_000);
    await page.goto(app.url);
    await heading('Verify a browser').waitFor();
    expect(await page.getByRole('region', { name: 'Verify a browser' }).textContent()).toContain('req-3');
    await screenshot('started-by-link');

    const opened = await xdgOpen(link('req-4'));
    expect(opened, opened.output).toMatchObject({ code: 0 });
    await page.getByText('req-4').waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await heading('Sign in to lab').waitFor();
    await page.close();
    await stopApp(app.child);
  }, 240_000);
});
