// The browser host with a real Chromium (Playwright, Debian's /usr/bin/chromium) and the real build
// (dist/, rebuilt when stale): the bridge script's token exchange, session (sessionStorage, never a
// cookie) and WebSocket, as a page runs them under the app's CSP; and one real app window (openAppWindow)
// on a private Xvfb display.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { launchLabChromium } from '../../lab/chromium';
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

/**
 * What the page sees (main/ is type-checked without the DOM library). Callbacks given to evaluate() run
 * in the page, so each one casts globalThis itself rather than calling a helper from here.
 */
type PageGlobals = {
  keyport: KeyportApi;
  document: { cookie: string };
  sessionStorage: { length: number; key(index: number): string | null; getItem(key: string): string | null };
  prompts: Prompt[];
};

const SESSION_KEY = 'keyport.session';
/** A window that never connected to the app (a spent or refused launch): not the cluster's fault. */
const NOT_CONNECTED = {
  ok: false,
  error: {
    code: 'UNAVAILABLE',
    message:
      'This window is not connected to Keyport Connect: its one-time link was already used or has expired.',
    details: { appConnection: 'NOT_CONNECTED' },
  },
};
/** A window whose connection to the app ended (a revoked session, the app gone). */
const LOST = {
  ok: false,
  error: {
    code: 'UNAVAILABLE',
    message: 'This window lost its connection to Keyport Connect.',
    details: { appConnection: 'LOST' },
  },
};

let dir: string;
let backend: Backend;
let host: BrowserHost;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** Every Set-Cookie header any page in any context received. */
const setCookies: string[] = [];
/** A plain page on another port of 127.0.0.1, and the request headers it was sent. */
let otherServer: Server;
let otherOrigin: string;
const otherRequests: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  await promisify(execFile)(process.execPath, ['build-app.mjs', '--if-stale'], { cwd: root });
  dir = await mkdtemp(join(tmpdir(), 'keyport-browser-'));
  backend = createBackend({ profiles: new ProfileStore(join(dir, 'home')), keystoreKind: 'file', env: {} });
  await backend.ready;
  host = await startBrowserHost({ backend, distDir: join(root, 'dist') });
  browser = await launchLabChromium();
  otherServer = createServer((request, response) => {
    otherRequests.push(request.headers);
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><title>Another local server</title><p>Another port.</p>');
  });
  await new Promise<void>((resolve) => otherServer.listen(0, '127.0.0.1', resolve));
  otherOrigin = `http://127.0.0.1:${(otherServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  expect(setCookies).toEqual([]);
  await browser?.close();
  if (otherServer) await new Promise<void>((resolve) => otherServer.close(() => resolve()));
  await host?.close();
  // The backend's profile watcher writes under `dir`: closed first, so the removal does not race it.
  await backend?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function newPage(): Promise<{ tab: Page; problems: string[] }> {
  const context = await browser.newContext();
  contexts.push(context);
  context.on('response', (response) => {
    void response.headerValue('set-cookie').then((value) => {
      if (value !== null) setCookies.push(value);
    });
  });
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

/** The page's sessionStorage, every key. */
const storage = (tab: Page) =>
  tab.evaluate(() => {
    const store = (globalThis as unknown as PageGlobals).sessionStorage;
    const entries: Record<string, string | null> = {};
    for (let i = 0; i < store.length; i++) {
      const key = store.key(i);
      if (key !== null) entries[key] = store.getItem(key);
    }
    return entries;
  });

const cookieOf = (tab: Page) => tab.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie);

it('the launch URL gives a working window.keyport, keeps working after a reload, and never shows the token', async () => {
  const { tab, problems } = await newPage();
  await tab.goto(host.url);

  expect(await appInfo(tab)).toMatchObject({ ok: true, value: { name: 'Keyport Connect' } });
  expect(tab.url()).toBe(`${host.origin}/`);
  // No cookie at all: the session is in this tab's sessionStorage, under one key.
  expect(await cookieOf(tab)).toBe('');
  expect(await tab.context().cookies()).toEqual([]);
  const stored = await storage(tab);
  expect(Object.keys(stored)).toEqual([SESSION_KEY]);
  const session = stored[SESSION_KEY];
  expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/);
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

  // A reload connects again with the stored session (the old page's socket is gone by then).
  await tab.reload();
  expect(await appInfo(tab)).toMatchObject({ ok: true, value: { name: 'Keyport Connect' } });
  expect(await storage(tab)).toEqual({ [SESSION_KEY]: session });

  // Another server on another port of 127.0.0.1, in the same tab: its page sees no session, and the
  // browser sends it no cookie (the reason there is none: every port shares one cookie jar).
  await tab.goto(`${otherOrigin}/`);
  expect(await storage(tab)).toEqual({});
  expect(await cookieOf(tab)).toBe('');
  // And in another tab of the same context.
  const otherTab = await tab.context().newPage();
  await otherTab.goto(`${otherOrigin}/other`);
  expect(await storage(otherTab)).toEqual({});
  expect(otherRequests.length).toBeGreaterThanOrEqual(2);
  for (const headers of otherRequests) expect(headers.cookie).toBeUndefined();
  await otherTab.close();

  // Back on the app's origin, the tab's own session is still there and still works.
  await tab.goto(`${host.origin}/`);
  expect(await appInfo(tab)).toMatchObject({ ok: true, value: { name: 'Keyport Connect' } });
  expect(await storage(tab)).toEqual({ [SESSION_KEY]: session });
  expect(problems).toEqual([]);
});

it('one open socket per session: a tab opened with a copy of the session is refused, and forgets it', async () => {
  const lines: string[] = [];
  const own = await startBrowserHost({
    backend,
    distDir: join(root, 'dist'),
    log: (line) => lines.push(line),
  });
  try {
    const { tab } = await newPage();
    await tab.goto(own.url);
    expect(await appInfo(tab)).toMatchObject({ ok: true });
    const stored = await storage(tab);
    // window.open copies the opener's sessionStorage into the new tab, as "duplicate tab" does.
    const [popup] = await Promise.all([
      tab.waitForEvent('popup'),
      tab.evaluate(() => {
        (globalThis as unknown as { open(url: string): unknown }).open('/');
      }),
    ]);
    await popup.waitForLoadState();
    expect(await appInfo(popup)).toEqual(NOT_CONNECTED);
    expect(await storage(popup)).toEqual({});
    // It did offer the copied session, twice (the retry after a pause), and was refused both times.
    expect(lines.filter((line) => line === 'bridge upgrade refused (409)')).toHaveLength(2);
    // The first tab keeps its socket and its session.
    expect(await appInfo(tab)).toMatchObject({ ok: true });
    expect(await storage(tab)).toEqual(stored);
    expect(own.connections).toBe(1);
  } finally {
    await own.close();
  }
});

it('revoked sessions: calls become UNAVAILABLE, the session is forgotten, a reload stays refused', async () => {
  const own = await startBrowserHost({ backend, distDir: join(root, 'dist') });
  try {
    const { tab } = await newPage();
    await tab.goto(own.url);
    expect(await appInfo(tab)).toMatchObject({ ok: true });
    own.revokeSessions();
    await tab.waitForFunction(
      (key) => (globalThis as unknown as PageGlobals).sessionStorage.getItem(key) === null,
      SESSION_KEY,
    );
    expect(await appInfo(tab)).toEqual(LOST);
    await tab.reload();
    expect(await appInfo(tab)).toEqual(NOT_CONNECTED);
    expect(own.connections).toBe(0);
  } finally {
    await own.close();
  }
});

it('a spent launch token opens nothing in another browser profile', async () => {
  const { tab } = await newPage();
  await tab.goto(host.url);
  expect(tab.url()).toBe(`${host.origin}/`);
  expect(await appInfo(tab)).toEqual(NOT_CONNECTED);
  expect(await storage(tab)).toEqual({});
  // Later calls too, without waiting.
  expect(
    await tab.evaluate(() => (globalThis as unknown as PageGlobals).keyport.clusters.list()),
  ).toMatchObject({
    error: { code: 'UNAVAILABLE', details: { appConnection: 'NOT_CONNECTED' } },
  });
});

it('a page opened without a token or a stored session does not even try to connect', async () => {
  const { tab } = await newPage();
  const sockets: string[] = [];
  tab.on('websocket', (socket) => sockets.push(socket.url()));
  await tab.goto(`${host.origin}/`);
  expect(await appInfo(tab)).toEqual(NOT_CONNECTED);
  expect(sockets).toEqual([]);
  expect(await storage(tab)).toEqual({});
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
      const deadline = Date.now() + 20_000;
      while (host.connections <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(host.connections).toBe(before + 1);
    } finally {
      await appWindow.close();
    }
    const deadline = Date.now() + 20_000;
    while (host.connections > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(host.connections).toBe(before);
  } finally {
    if (xvfb.pid !== undefined && xvfb.exitCode === null) process.kill(xvfb.pid, 'SIGTERM');
  }
});
