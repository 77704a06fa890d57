// A private network + mount namespace for the lab's smart-card stack. vpcd (inside pcscd) binds
// 0.0.0.0:35963/35964, and nothing of the lab may listen beyond loopback on the host, so pcscd and the
// virtual card live in a namespace of their own: its own loopback (with quickack on the local routes, or
// Debian's vpcd 0.8, which writes length and payload separately with Nagle on, waits ~40 ms for a delayed
// ACK on every APDU) and its own /run (pcscd 1.9.9 always puts its socket at /run/pcscd/pcscd.comm),
// bind-mounted from a folder the host sees. shared/design/LAB.md "Smart cards".
//
// A holder process (sleep) keeps the namespace alive; every process in it is started by nsenter as our
// own child, so each is stopped by its PID. All of them get SIGKILL if this process dies (setpriv
// --pdeathsig), so a crashed test leaves no pcscd behind.
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const READY_TIMEOUT_MS = 10_000;
export const STOP_GRACE_MS = 3_000;

const HOLDER_SCRIPT = [
  'set -e',
  'ip link set lo up',
  'ip route replace local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 quickack 1',
  'ip route replace local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1 quickack 1',
  'mount --bind "$1" /run',
  'echo ready',
  'exec sleep infinity',
].join('\n');

export interface PrivateNamespace {
  /** The host folder that is /run inside the namespace. */
  runDir: string;
  holderPid: number;
  /** Starts `command` inside the namespace, working directory `cwd`, as a child of this process. */
  spawn(command: string, args: string[], options: SpawnOptions & { cwd: string }): ChildProcess;
  stop(): Promise<void>;
}

export async function createPrivateNamespace(dir: string): Promise<PrivateNamespace> {
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { recursive: true, mode: 0o755 });
  const holder = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      'unshare',
      '--net',
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      HOLDER_SCRIPT,
      'keyport-piv-namespace',
      runDir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the namespace did not come up: ${output}`)),
      READY_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (/^ready$/m.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    holder.stdout?.on('data', onData);
    holder.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    holder.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start unshare (util-linux): ${error.message}`));
    });
    holder.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(
          `could not make a private network and mount namespace (exit ${code ?? signal}; root is needed): ${output.trim()}`,
        ),
      );
    });
  });
  try {
    await ready;
  } catch (error) {
    await endChild(holder);
    throw error;
  }
  const holderPid = holder.pid as number;
  let stopped: Promise<void> | undefined;
  return {
    runDir,
    holderPid,
    spawn(command, args, options) {
      const { cwd, ...rest } = options;
      return spawn(
        'nsenter',
        [
          '-t',
          String(holderPid),
          '--net',
          '--mount',
          `--wd=${cwd}`,
          '--',
          'setpriv',
          '--pdeathsig',
          'KILL',
          '--',
          command,
          ...args,
        ],
        rest,
      );
    },
    stop() {
      stopped ??= endChild(holder);
      return stopped;
    },
  };
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the child has exited. Safe twice. */
export async function endChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
