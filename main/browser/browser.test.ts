// The browser host with a real Chromium (Playwright, Debian's /usr/bin/chromium) and the real build
// (dist/, rebuilt when stale): the bridge script's token exchange, cookie and WebSocket, as a page runs
// them under the app's CSP; and one real app window (openAppWindow) on a private Xvfb display.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import type { KeyportApi, Prompt, Result } from '../../preload/contract';
import { createBackend } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { openAppWindow } from './chromium';
import { startBrowserHost } from './host';
import type { BrowserHost } from './host';

const root = fileURLToPath(new URL('../..', import.meta.url));
const LAB_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/**
 * What the page sees (main/ is type-checked without the DOM library). Callbacks given to evaluate() run
 * in the page, so each one casts globalThis itself rather than calling a helper from here.
 */
type PageGlobals = {
  keyport: KeyportApi;
  document: { cookie: string };
  prompts: Prompt[];
};

let dir: string;
let backend: Backend;
let host: BrowserHost;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  await promisify(execFile)(process.execPath, ['build-app.mjs', '--if-stale'], { cwd: root });
  dir = await mkdtemp(join(tmpdir(), 'keyport-browser-'));
  backend = createBackend({ profiles: new ProfileStore(join(dir, 'home')), keystoreKind: 'file', env: {} });
  host = await startBrowserHost({ backend, distDir: join(root, 'dist') });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: LAB_FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await host?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function newPage(): Promise<{ tab: Page; problems: string[] }> {
  const context = await browser.newContext();
  contexts.push(context);
  const tab = await context.newPage();
  const problems: string[] = [];
  tab.on('pageerror', (error) => problems.push(error.message));
  tab.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
  });
  return { tab, problems };
}

const appInfo = (tab: Page) =>
  tab.evaluate(() => (globalThis as unknown as PageGlobals).keyport.app.info()) as Promise<
    Result<{ name: string }>
  >;

it('the launch URL gives a working window.keyport, keeps working after a reload, and never shows the token', async () => {
  const { tab, problems } = await newPage();
  await tab.goto(host.url);

  expect(await appInfo(tab)).toMatchObject({ ok: true, value: { name: 'Keyport Connect' } });
  expect(tab.url()).toBe(`${host.origin}/`);
  // The session cookie is HttpOnly and SameSite=Strict: the page's scripts cannot read it.
  expect(await tab.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie)).toBe('');
  const cookies = await tab.context().cookies();
  expect(cookies).toEqual([
    expect.objectContaining({ name: 'keyport_session', httpOnly: true, sameSite: 'Strict', secure: false }),
  ]);
  // window.keyport cannot be replaced by the page.
  expect(
    await tab.evaluate(() => {
      const before = (globalThis as unknown as PageGlobals).keyport;
      try {
        (globalThis as unknown as { keyport: unknown }).keyport = {};
      } catch {
        // Strict-mode assignments throw; either way it must stay.
      }
      const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'keyport');
      return {
        same: (globalThis as unknown as PageGlobals).keyport === before,
        writable: descriptor?.writable,
        configurable: descriptor?.configurable,
      };
    }),
  ).toEqual({ same: true, writable: false, configurable: false });

  // A backend event reaches the page's listener.
  await tab.evaluate(() => {
    (globalThis as unknown as PageGlobals).prompts = [];
    (globalThis as unknown as PageGlobals).keyport.onPrompt((prompt) =>
      (globalThis as unknown as PageGlobals).prompts.push(prompt),
    );
  });
  const ceremony = backend.broker.ceremony();
  ceremony.securityKey.tap('Tap any security key');
  await tab.waitForFunction(() => (globalThis as unknown as PageGlobals).prompts.length > 0);
  expect(await tab.evaluate(() => (globalThis as unknown as PageGlobals).prompts[0])).toMatchObject({
    kind: 'tapKey',
    message: 'Tap any security key',
  });
  ceremony.finish();

  await tab.reload();
  expect(await appInfo(tab)).toMatchObject({ ok: true, value: { name: 'Keyport Connect' } });
  expect(problems).toEqual([]);
});

it('a spent launch token opens nothing in another browser profile', async () => {
  const { tab } = await newPage();
  await tab.goto(host.url);
  expect(tab.url()).toBe(`${host.origin}/`);
  const result = await appInfo(tab);
  expect(result).toEqual({
    ok: false,
    error: {
      code: 'UNAVAILABLE',
      message: 'Keyport Connect lost its connection to the app. Restart it.',
      details: {},
    },
  });
  // Later calls too, without waiting.
  expect(
    await tab.evaluate(() => (globalThis as unknown as PageGlobals).keyport.clusters.list()),
  ).toMatchObject({
    error: { code: 'UNAVAILABLE' },
  });
});

it('a page opened without a token is refused', async () => {
  const { tab } = await newPage();
  await tab.goto(`${host.origin}/`);
  expect(await appInfo(tab)).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
  expect(await tab.context().cookies()).toEqual([]);
});

it('openAppWindow shows the app in a real Chromium window', async () => {
  const xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  try {
    const display = await new Promise<string>((resolve, reject) => {
      xvfb.stdio[3]?.once('data', (data: Buffer) => resolve(data.toString().trim()));
      xvfb.once('exit', () => reject(new Error('Xvfb exited')));
    });
    const before = host.connections;
    const appWindow = await openAppWindow(host.newLaunchUrl(), {
      env: { ...process.env, DISPLAY: `:${display}` },
    });
    if (!appWindow) throw new Error('no window');
    try {
      const deadline = Date.now() + 10_000;
      while (host.connections <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(host.connections).toBe(before + 1);
    } finally {
      await appWindow.close();
    }
    const deadline = Date.now() + 2_000;
    while (host.connections > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(host.connections).toBe(before);
  } finally {
    if (xvfb.pid !== undefined && xvfb.exitCode === null) process.kill(xvfb.pid, 'SIGTERM');
  }
});
