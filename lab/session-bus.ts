// A private D-Bus session bus for a test: `dbus-daemon --session` (Debian's dbus-daemon) on a UNIX socket
// in a fresh short folder, a direct child of this process, ended by its PID. --print-address writes the
// address once the bus listens, which doubles as the ready signal. (lab/keyring.ts starts its own bus the
// same way, next to gnome-keyring.)
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const STOP_GRACE_MS = 2_000;

export interface PrivateSessionBus {
  /** DBUS_SESSION_BUS_ADDRESS for this bus. */
  address: string;
  /** The bus's socket, removed by stop(). */
  socketPath: string;
  /** Ends dbus-daemon (SIGTERM, SIGKILL after a grace period) and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startPrivateSessionBus(
  options: { prefix?: string; startTimeoutMs?: number } = {},
): Promise<PrivateSessionBus> {
  // A short folder: a UNIX socket's path has at most 107 bytes.
  const dir = mkdtempSync(join(tmpdir().length <= 40 ? tmpdir() : '/tmp', options.prefix ?? 'kp-bus-'));
  const socketPath = join(dir, 'bus');
  const daemon = spawn(
    'dbus-daemon',
    ['--session', `--address=unix:path=${socketPath}`, '--nofork', '--print-address'],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const running = () => daemon.pid !== undefined && daemon.exitCode === null && daemon.signalCode === null;
  const exitGuard = () => {
    // Last resort when the test runner exits without stop(): no orphaned bus, no folder left.
    if (running()) process.kill(daemon.pid as number, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', exitGuard);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.removeListener('exit', exitGuard);
      if (running()) {
        const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
        process.kill(daemon.pid as number, 'SIGTERM');
        const timer = setTimeout(() => {
          if (running()) process.kill(daemon.pid as number, 'SIGKILL');
        }, STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    const address = await firstLine(daemon, options.startTimeoutMs ?? 20_000);
    return { address, socketPath, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`lab session bus: dbus-daemon printed nothing in ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (err += text));
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      const newline = out.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, newline).trim());
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(
        new Error(
          `lab session bus: dbus-daemon: ${error.message} (install it: node lab/system-packages.mjs)`,
        ),
      );
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`lab session bus: dbus-daemon exited early: ${err}`));
    });
  });
}
