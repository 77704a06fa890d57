// A private Secret Service for tests and the demo: its own session D-Bus and an unlocked
// gnome-keyring-daemon, both in a throwaway HOME, so nothing touches the developer's real keychain.
// Recipe: shared/design/LAB.md "OS keychain (Secret Service)". Debian packages: gnome-keyring, dbus-daemon.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const SECRETS_BUS_NAME = 'org.freedesktop.secrets';
export const LOGIN_COLLECTION_PATH = '/org/freedesktop/secrets/collection/login';

export interface LabKeyringEnv {
  DBUS_SESSION_BUS_ADDRESS: string;
  HOME: string;
  XDG_DATA_HOME: string;
  XDG_CONFIG_HOME: string;
  XDG_RUNTIME_DIR: string;
}

export interface LabKeyring {
  /** What a child process needs to use this keychain: merge it over process.env. */
  env: LabKeyringEnv;
  busAddress: string;
  /** The private HOME; XDG_DATA_HOME and XDG_CONFIG_HOME live inside it, so it holds every file the keyring writes. */
  homeDir: string;
  /** Locks the login (default) collection, as a screen lock or `secret-tool lock` would. */
  lock(): Promise<void>;
  isLocked(): Promise<boolean>;
  /** Ends the two daemons (by PID) and removes the temporary directories. Safe to call twice. */
  stop(): Promise<void>;
}

export interface LabKeyringOptions {
  /** Password of the login keyring; gnome-keyring encrypts the keyring file with it. */
  password?: string;
  /** How long to wait for the daemons to come up. */
  startTimeoutMs?: number;
}

const DEFAULT_PASSWORD = 'keyport-lab-keyring';
// sockaddr_un.sun_path is 108 bytes on Linux.
const MAX_UNIX_SOCKET_PATH = 107;
const STOP_GRACE_MS = 2_000;

export async function startLabKeyring(opts: LabKeyringOptions = {}): Promise<LabKeyring> {
  const password = opts.password ?? DEFAULT_PASSWORD;
  // With an empty password on stdin gnome-keyring creates no login keyring: no default collection at all.
  if (password === '') throw new Error('startLabKeyring: the keyring password must not be empty');
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;

  const rootDir = mkdtempSync(join(shortTmpdir(), 'keyport-keyring-'));
  const homeDir = join(rootDir, 'home');
  const runtimeDir = join(rootDir, 'run');
  const dirs = {
    HOME: homeDir,
    XDG_DATA_HOME: join(homeDir, '.local', 'share'),
    XDG_CONFIG_HOME: join(homeDir, '.config'),
    XDG_RUNTIME_DIR: runtimeDir,
  };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const busSocketPath = join(runtimeDir, 'bus');

  const processes: ManagedProcess[] = [];
  const exitGuard = () => {
    // Last resort when the test runner exits without stop(): no orphaned daemons, no temp dirs.
    for (const managed of processes) managed.killNow();
    rmSync(rootDir, { recursive: true, force: true });
  };
  process.once('exit', exitGuard);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', exitGuard);
      // Keyring daemon first, while its bus is still there, then the bus.
      for (const managed of [...processes].reverse()) await managed.stop();
      await endStrayActivatedServices(runtimeDir);
      rmSync(rootDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    // No DISPLAY / WAYLAND_DISPLAY: the unlock prompter that D-Bus activates for a locked collection
    // must fail at once instead of opening a window on the developer's screen and waiting.
    const daemonEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      ...dirs,
    };

    if (busSocketPath.length > MAX_UNIX_SOCKET_PATH) {
      throw new Error(`startLabKeyring: bus socket path is too long for a unix socket: ${busSocketPath}`);
    }
    const dbus = new ManagedProcess(
      'dbus-daemon',
      ['--session', `--address=unix:path=${busSocketPath}`, '--nofork', '--print-address'],
      daemonEnv,
    );
    processes.push(dbus);
    // --print-address writes the address once the bus is listening, so it doubles as the ready signal.
    const busAddress = (await dbus.firstStdoutLine(startTimeoutMs)).trim();

    const env: LabKeyringEnv = { DBUS_SESSION_BUS_ADDRESS: busAddress, ...dirs };
    const keyringDaemon = new ManagedProcess(
      'gnome-keyring-daemon',
      ['--foreground', '--unlock', '--components=secrets'],
      { ...daemonEnv, ...env },
      password,
    );
    processes.push(keyringDaemon);
    await waitForBusName(busAddress, SECRETS_BUS_NAME, keyringDaemon, startTimeoutMs);

    const isLocked = async (): Promise<boolean> => {
      const reply = await dbusSend(busAddress, [
        `--dest=${SECRETS_BUS_NAME}`,
        LOGIN_COLLECTION_PATH,
        'org.freedesktop.DBus.Properties.Get',
        'string:org.freedesktop.Secret.Collection',
        'string:Locked',
      ]);
      return /boolean true/.test(reply);
    };
    const lock = async (): Promise<void> => {
      await dbusSend(busAddress, [
        `--dest=${SECRETS_BUS_NAME}`,
        '/org/freedesktop/secrets',
        'org.freedesktop.Secret.Service.Lock',
        `array:objpath:${LOGIN_COLLECTION_PATH}`,
      ]);
      if (!(await isLocked()))
        throw new Error('lab keyring: Lock returned but the login collection is not locked');
    };

    return { env, busAddress, homeDir, lock, isLocked, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function dbusSend(busAddress: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('dbus-send', [`--bus=${busAddress}`, '--print-reply', ...args], {
    timeout: 5_000,
  });
  return stdout;
}

async function waitForBusName(
  busAddress: string,
  name: string,
  owner: ManagedProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (owner.exited) {
      throw new Error(`lab keyring: ${owner.command} exited before owning ${name}:\n${owner.output()}`);
    }
    const reply = await dbusSend(busAddress, [
      '--dest=org.freedesktop.DBus',
      '/',
      'org.freedesktop.DBus.NameHasOwner',
      `string:${name}`,
    ]);
    if (/boolean true/.test(reply)) return;
    if (Date.now() > deadline) {
      throw new Error(`lab keyring: ${name} has no owner after ${timeoutMs} ms:\n${owner.output()}`);
    }
    await sleep(20);
  }
}

/**
 * Services the bus activated on its own (the unlock prompter, or a second keyring daemon) are
 * reparented away from dbus-daemon, so they are found by the one thing they all inherit: our
 * private XDG_RUNTIME_DIR. They normally exit when the bus goes away; this ends any that did not.
 */
async function endStrayActivatedServices(runtimeDir: string): Promise<void> {
  const marker = `XDG_RUNTIME_DIR=${runtimeDir}\0`;
  const deadline = Date.now() + STOP_GRACE_MS;
  for (;;) {
    const strays = processIdsWithEnvironment(marker);
    if (strays.length === 0) return;
    if (Date.now() > deadline) {
      for (const pid of strays) signal(pid, 'SIGKILL');
      return;
    }
    for (const pid of strays) signal(pid, 'SIGTERM');
    await sleep(50);
  }
}

/** PIDs of live processes (of this user) whose environment contains `entry`; Linux /proc only. */
export function processIdsWithEnvironment(entry: string): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'latin1').includes(entry)) pids.push(pid);
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return pids;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

class ManagedProcess {
  readonly child: ChildProcess;
  exited = false;
  private readonly exitPromise: Promise<void>;
  private outputTail = '';

  constructor(
    readonly command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    stdinText?: string,
  ) {
    this.child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', () => {
        this.exited = true;
        resolve();
      });
      // spawn failures (ENOENT: the Debian package is missing) arrive as 'error' without 'exit'.
      this.child.once('error', (error) => {
        this.exited = true;
        const hint =
          'code' in error && error.code === 'ENOENT' ? ' (install it: node lab/system-packages.mjs)' : '';
        this.remember(`${command}: ${error.message}${hint}\n`);
        resolve();
      });
    });
    this.child.stdout?.setEncoding('utf8').on('data', (text: string) => this.remember(text));
    this.child.stderr?.setEncoding('utf8').on('data', (text: string) => this.remember(text));
    this.child.stdin?.on('error', () => {});
    this.child.stdin?.end(stdinText ?? '');
  }

  output(): string {
    return this.outputTail;
  }

  firstStdoutLine(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      let buffered = '';
      const onData = (text: string) => {
        buffered += text;
        const newline = buffered.indexOf('\n');
        if (newline >= 0) finish(() => resolve(buffered.slice(0, newline)));
      };
      const timer = setTimeout(
        () =>
          finish(() => reject(new Error(`lab keyring: ${this.command} printed nothing in ${timeoutMs} ms`))),
        timeoutMs,
      );
      void this.exitPromise.then(() =>
        finish(() => reject(new Error(`lab keyring: ${this.command} exited early:\n${this.outputTail}`))),
      );
      let done = false;
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.child.stdout?.off('data', onData);
        settle();
      };
      this.child.stdout?.on('data', onData);
    });
  }

  async stop(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    signal(this.child.pid, 'SIGTERM');
    const timer = setTimeout(() => this.killNow(), STOP_GRACE_MS);
    await this.exitPromise;
    clearTimeout(timer);
  }

  killNow(): void {
    if (!this.exited && this.child.pid !== undefined) signal(this.child.pid, 'SIGKILL');
  }

  private remember(text: string): void {
    this.outputTail = (this.outputTail + text).slice(-4_000);
  }
}

function shortTmpdir(): string {
  // A long $TMPDIR (macOS-style) would push the bus socket past the unix socket path limit.
  const preferred = tmpdir();
  return preferred.length <= 40 ? preferred : '/tmp';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
