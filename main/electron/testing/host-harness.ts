// Starts the Electron host (main.ts's startElectronHost) against a fresh Electron double, for the host's
// test files. Each of them replaces `electron` first (vi.mock('electron', ...) with electron-double.ts's
// module): main.ts imports it at its top. The backend is a recording one by default, or a test's own (the
// real backend on a temporary KEYPORT_HOME, for the tray, the notifications and the relogin socket).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, vi } from 'vitest';
import { methodNames } from '../../../preload/contract';
import type { EventName, EventPayloads, HandlerTable, Prompt } from '../../../preload/contract';
import type { Clock } from '../../../proto/clock';
import { ProfileStore } from '../../../client/profiles';
import type { Profile, TrustedCluster } from '../../../client/profiles';
import { createBackend } from '../../backend/backend';
import type { Backend } from '../../backend/backend';
import type { ElectronApi, HostDeps } from '../main';
import { createFakeElectron } from './electron-double';
import type { FakeElectron, FakeOptions, FakeWindow } from './electron-double';

export type HostBackend = ReturnType<HostDeps['createBackend']>;

const temporary: string[] = [];

export function tempDir(prefix = 'keyport-electron-host-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

/** For afterAll: every folder tempDir() made. */
export function removeTempDirs(): void {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export const PRELOAD = '/opt/keyport/dist/preload/preload.cjs';
export const TRAY_ICON = '/opt/keyport/dist/electron/icons/tray.png';

let rendererDir: string | undefined;
/** A renderer folder with an index.html, as dist/renderer would be. */
export function rendererFolder(): string {
  if (!rendererDir) {
    rendererDir = join(tempDir(), 'renderer');
    mkdirSync(rendererDir);
    writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><title>Keyport Connect</title>');
  }
  return rendererDir;
}

/** A backend that records what the host asks of it and answers every method with a placeholder. */
export function recordingBackend() {
  const calls: { method: string; argument: unknown }[] = [];
  const listeners = new Map<EventName, Set<(payload: unknown) => void>>();
  const handlers = Object.fromEntries(
    methodNames.map((method) => [
      method,
      async (argument?: unknown) => {
        calls.push({ method, argument });
        return { ok: true, value: `${method} ran` };
      },
    ]),
  ) as unknown as HandlerTable;
  let closed = 0;
  /** The keyport:// links handed to the backend, in order. */
  const links: unknown[] = [];
  /** The relogins asked for, in order. */
  const relogins: { cluster: string; reason: string[] }[] = [];
  return {
    handlers,
    calls,
    links,
    relogins,
    relogin: {
      signInAgain(cluster: string, reason: string[]) {
        relogins.push({ cluster, reason });
        return Promise.resolve({ address: cluster } as Profile);
      },
    },
    async openDeepLink(link: unknown) {
      links.push(link);
      return { kind: 'refused', error: { code: 'INTERNAL', message: 'recorded', details: {} } } as const;
    },
    on(event: EventName, listener: (payload: never) => void) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as (payload: unknown) => void);
      return () => void set.delete(listener as (payload: unknown) => void);
    },
    emit<E extends EventName>(event: E, payload: EventPayloads[E]) {
      for (const listener of listeners.get(event) ?? []) listener(payload);
    },
    listenerCount: () => [...listeners.values()].reduce((sum, set) => sum + set.size, 0),
    async close() {
      closed += 1;
    },
    get closed() {
      return closed;
    },
  };
}

export type RecordingBackend = ReturnType<typeof recordingBackend>;

export interface StartOptions<B extends HostBackend> extends FakeOptions {
  platform?: NodeJS.Platform;
  argv?: string[];
  /** KEYPORT_HOME (default: a new empty one); the real backend a test makes should share it. */
  keyportHome?: string;
  clock?: Clock;
  /** The backend the host makes (default: a recording one). */
  backend?: () => B;
}

export async function startHost<B extends HostBackend = ReturnType<typeof recordingBackend>>(
  options: StartOptions<B> = {},
) {
  const { startElectronHost } = await import('../main');
  const fake = createFakeElectron({ lock: true, userData: tempDir(), ...options });
  const backend = (options.backend ?? recordingBackend)() as B;
  let backendsCreated = 0;
  const deps: HostDeps = {
    paths: { renderer: rendererFolder(), preload: PRELOAD, trayIcon: TRAY_ICON },
    createBackend: () => {
      backendsCreated += 1;
      return backend;
    },
    platform: options.platform ?? 'linux',
    argv: options.argv ?? ['/opt/keyport/keyport-connect'],
    profiles: new ProfileStore(options.keyportHome ?? tempDir('kp-home-')),
    clock: options.clock ?? Date.now,
  };
  startElectronHost(fake.api as unknown as ElectronApi, deps);
  started.push(fake);
  return { fake, backend, backendsCreated: () => backendsCreated, deps };
}

const started: FakeElectron[] = [];

/**
 * For afterEach: quits every host a test started and waits for its quit to go through (the backend and the
 * relogin socket closed), so no socket is still being set up when the test's folders are removed.
 */
export async function quitHosts(): Promise<void> {
  for (const fake of started.splice(0)) {
    if (!fake.exit.quitted) fake.app.quit();
    for (let waited = 0; !fake.exit.quitted && waited < 30_000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** startHost, then 'ready': the window, the tray and the relogin socket are up. */
export async function startReadyHost<B extends HostBackend = ReturnType<typeof recordingBackend>>(
  options: StartOptions<B> = {},
) {
  const started = await startHost(options);
  await started.fake.ready();
  const [window] = started.fake.windows;
  if (!window || started.fake.windows.length !== 1) throw new Error('The host opened no window, or several.');
  return { ...started, window: window as FakeWindow };
}

/** A trusted cluster record as `keyport login` leaves it (no CA worth the name: nothing here dials it). */
export function trustedCluster(address: string, name: string, lastUser?: string): TrustedCluster {
  return {
    address,
    name,
    caPin: 'sha256:' + '0'.repeat(64),
    caPem: '-----BEGIN CERTIFICATE-----\nlab\n-----END CERTIFICATE-----\n',
    trustedAtMs: 1,
    ...(lastUser ? { lastUser } : {}),
  };
}

/** A signed-in profile as a login saves it; its certificate fields are markers a test can look for. */
export function savedProfile(address: string, cluster: string, user: string, expiresMs: number): Profile {
  return {
    address,
    cluster,
    user,
    roles: ['access'],
    logins: [user],
    mfaVerified: true,
    validAfterMs: expiresMs - 12 * 3_600_000,
    expiresMs,
    keystore: 'file',
    keyId: `secret-key-id-${user}`,
    tlsCertPem: `SECRET-TLS-CERTIFICATE-${user}`,
    sshCertificate: `SECRET-SSH-CERTIFICATE-${user}`,
  };
}

/**
 * The real backend on `home` (the profile watcher on, so the CLI's logins and logouts show), on `clock`, its
 * session watcher without a timer: a test says when the clock is read (backend.sessions.check()).
 */
export function realBackend(home: string, clock: Clock): () => Backend {
  return () =>
    createBackend({
      profiles: new ProfileStore(home),
      keystoreKind: 'file',
      env: {},
      clock,
      sessionNotices: { tickMs: 0 },
    });
}

/**
 * A test file's lab home, for the host run on the real backend: before each test a clock (`newClock`, the
 * test's lab clock) and a fresh KEYPORT_HOME whose profile store trusts `clusters`; after each, the hosts
 * quit, the clock stopped and the mocks restored; the temporary folders removed after all. Read its fields
 * inside the tests (each test has its own).
 */
export function labHome<C extends { now: Clock; dispose(): void }>(
  prefix: string,
  clusters: TrustedCluster[],
  newClock: () => C,
): { clock: C; home: string; store: ProfileStore } {
  const lab = {} as { clock: C; home: string; store: ProfileStore };
  beforeEach(async () => {
    lab.clock = newClock();
    lab.home = tempDir(prefix);
    lab.store = new ProfileStore(lab.home);
    for (const cluster of clusters) await lab.store.trustCluster(cluster);
  });
  afterEach(async () => {
    await quitHosts();
    lab.clock.dispose();
    vi.restoreAllMocks();
  });
  afterAll(removeTempDirs);
  return lab;
}

/** startReadyHost on the real backend over `lab`'s home and clock (labHome), with the prompts it shows. */
export async function startOnLabHome(
  lab: { clock: { now: Clock }; home: string },
  options: Omit<StartOptions<Backend>, 'keyportHome' | 'backend' | 'clock'> = {},
) {
  const host = await startReadyHost({
    ...options,
    keyportHome: lab.home,
    backend: realBackend(lab.home, lab.clock.now),
    clock: lab.clock.now,
  });
  const prompts: Prompt[] = [];
  host.backend.on('onPrompt', (prompt) => prompts.push(prompt));
  return { ...host, prompts };
}
