// startLabPivCard: the lab's virtual PIV card on a real pcscd, for tests, benchmarks and the demo.
// pcscd (with vsmartcard's vpcd reader driver) and the card process run in a private network and mount
// namespace (namespace.ts); clients on the host reach pcscd through its socket, PCSCLITE_CSOCK_NAME.
// Debian packages: pcscd, vsmartcard-vpcd (lab/system-packages.mjs installs them).
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ControlClient, ControlEvent } from './control';
import { connectControl, MAX_UNIX_SOCKET_PATH } from './control';
import type { PrivateNamespace } from './namespace';
import { createPrivateNamespace, endChild } from './namespace';
import type { NewCardOptions } from './state';
import { loadOrCreateCardState } from './state';
import type { TouchDecision, TouchMode } from './touch';

const repoRoot = resolve(import.meta.dirname, '../..');
const cardProcessPath = join(import.meta.dirname, 'card-process.ts');
/** vpcd's FRIENDLYNAME is "Virtual PCD"; pcscd adds the reader and slot numbers. Port 35963 is slot 0. */
export const LAB_READER_NAME = 'Virtual PCD 00 00';
const START_TIMEOUT_MS = 20_000;
const OUTPUT_LIMIT = 16_384;

export interface LabPivCardOptions extends NewCardOptions {
  /** Holds run/ (pcscd's socket), the control socket and, by default, the state. Temporary by default. */
  dir?: string;
  /** The card's state file (0600); reused when it exists, so a card keeps its keys across starts. */
  statePath?: string;
  touch?: TouchMode;
  /** How long a manual touch request waits before the card answers 6982 (default 15 s, a YubiKey's). */
  touchTimeoutMs?: number;
  /** Extra environment for the card process, such as a LabClock's env (touch caching reads that clock). */
  env?: Record<string, string>;
}

export interface LabPivCardStats {
  apdus: number;
  /** APDUs by instruction byte in hex ("87": GENERAL AUTHENTICATE). */
  byIns: Record<string, number>;
}

export interface LabPivCard {
  /** pcscd's socket: give it to PC/SC clients as PCSCLITE_CSOCK_NAME. */
  socketPath: string;
  /** What a client merges over its environment to reach this pcscd. */
  env: { PCSCLITE_CSOCK_NAME: string };
  readerName: string;
  controlSocket: string;
  statePath: string;
  serial: number;
  /** PEM of the lab PIV attestation root (kept in the state): what a cluster is told to trust. */
  attestationRootPem: string;
  /** PEM of the card's f9 attestation certificate (also in the card's object 5FFF01). */
  attestationCertificatePem: string;
  /** Card events: 'touch-needed', 'touch', 'connected', 'disconnected', 'power', 'atr' (and 'event' for all). */
  events: EventEmitter;
  /** Answers the waiting touch request (manual mode); false when none is waiting. */
  touch(decision?: TouchDecision): Promise<boolean>;
  setTouchMode(mode: TouchMode): Promise<void>;
  /** Resolves at the next touch request, or now if one is waiting. */
  nextTouchRequest(): Promise<void>;
  /** Touches every time the card asks while `work` runs (manual mode). */
  touchingWhile<T>(work: () => Promise<T>): Promise<T>;
  stats(options?: { reset?: boolean }): Promise<LabPivCardStats>;
  /** Pulls the card out: resolves once it is off vpcd (pcscd notices within about 0.4 s, its poll). */
  remove(): Promise<void>;
  /** Puts it back: resolves once pcscd has powered it and read its ATR. */
  insert(): Promise<void>;
  /** Stops and starts pcscd (clients' handles die); resolves once the card is back in its reader. */
  restartPcscd(): Promise<void>;
  /** What pcscd and the card process printed, for failure reports. */
  output(): string;
  /** Stops the card, pcscd and the namespace (by their PIDs); removes `dir` only when it made it. */
  stop(): Promise<void>;
}

export async function startLabPivCard(options: LabPivCardOptions = {}): Promise<LabPivCard> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'keyport-piv-'));
  const socketPath = join(dir, 'run', 'pcscd', 'pcscd.comm');
  const controlSocket = join(dir, 'card.control');
  const statePath = options.statePath ?? join(dir, 'piv-card.json');
  let log = '';
  const record = (source: string, chunk: Buffer | string): void => {
    log = (log + chunk.toString().replace(/^(?=.)/gm, `[${source}] `)).slice(-OUTPUT_LIMIT);
  };
  let namespace: PrivateNamespace | undefined;
  let pcscd: ChildProcess | undefined;
  let cardProcess: ChildProcess | undefined;
  let control: ControlClient | undefined;
  const cleanup = async (): Promise<void> => {
    control?.close();
    if (cardProcess) await endChild(cardProcess);
    if (pcscd) await endChild(pcscd);
    await namespace?.stop();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const path of [socketPath, controlSocket]) {
      if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH) throw new Error(`socket path too long: ${path}`);
    }
    const state = await loadOrCreateCardState(statePath, options);
    namespace = await createPrivateNamespace(dir);
    const ns = namespace;

    const startPcscd = async (): Promise<ChildProcess> => {
      const child = ns.spawn('pcscd', ['--foreground'], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (chunk: Buffer) => record('pcscd', chunk));
      child.stderr?.on('data', (chunk: Buffer) => record('pcscd', chunk));
      await waitFor(
        () => existsSync(socketPath),
        child,
        'pcscd did not create its socket (Debian: pcscd, vsmartcard-vpcd)',
        () => log,
      );
      return child;
    };
    pcscd = await startPcscd();

    const touchArgs =
      options.touchTimeoutMs === undefined ? [] : ['--touch-timeout-ms', String(options.touchTimeoutMs)];
    const card = ns.spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        cardProcessPath,
        '--state',
        statePath,
        '--control',
        controlSocket,
        '--touch',
        options.touch ?? 'auto',
        ...touchArgs,
      ],
      { cwd: repoRoot, env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    cardProcess = card;
    let cardStdout = '';
    card.stdout?.on('data', (chunk: Buffer) => {
      cardStdout += chunk.toString();
      record('card', chunk);
    });
    card.stderr?.on('data', (chunk: Buffer) => record('card', chunk));
    await waitFor(
      () => /"event":"ready"/.test(cardStdout),
      card,
      'the card process did not start',
      () => log,
    );
    const client = await connectControl(controlSocket);
    control = client;

    const events = new EventEmitter();
    let touchWaiting = false;
    client.events.on('event', (event: ControlEvent) => {
      if (event.event === 'touch-needed') touchWaiting = true;
      if (event.event === 'touch') touchWaiting = false;
      events.emit('event', event);
      events.emit(event.event, event);
    });
    const nextEvent = (name: string, what: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off(name, onEvent);
          reject(new Error(`${what} (no "${name}" within ${START_TIMEOUT_MS} ms)\n${log}`));
        }, START_TIMEOUT_MS);
        const onEvent = (): void => {
          clearTimeout(timer);
          resolve();
        };
        events.once(name, onEvent);
      });
    const request = async (body: Parameters<ControlClient['request']>[0]) => {
      const reply = await client.request(body);
      if (!reply.ok && reply.reply !== 'touch')
        throw new Error(`the card refused ${JSON.stringify(body)}: ${reply.error}`);
      return reply;
    };

    const insert = async (): Promise<void> => {
      const seen = nextEvent('atr', 'pcscd did not power the card');
      await request({ card: 'insert' });
      await seen;
    };
    await insert();

    let stopped: Promise<void> | undefined;
    const labCard: LabPivCard = {
      socketPath,
      env: { PCSCLITE_CSOCK_NAME: socketPath },
      readerName: LAB_READER_NAME,
      controlSocket,
      statePath,
      serial: state.serial,
      attestationRootPem: state.attestation.root.certPem,
      attestationCertificatePem: state.attestation.device.certPem,
      events,
      async touch(decision = 'approve') {
        return (await request({ touch: decision })).ok;
      },
      async setTouchMode(mode) {
        await request({ touchMode: mode });
      },
      nextTouchRequest() {
        return touchWaiting ? Promise.resolve() : nextEvent('touch-needed', 'nobody asked for a touch');
      },
      async touchingWhile(work) {
        const approve = (): void => {
          void client.request({ touch: 'approve' });
        };
        events.on('touch-needed', approve);
        try {
          if (touchWaiting) approve();
          return await work();
        } finally {
          events.off('touch-needed', approve);
        }
      },
      async stats({ reset = false } = {}) {
        const reply = await request({ stats: reset ? 'reset' : 'get' });
        return { apdus: reply.apdus as number, byIns: reply.byIns as Record<string, number> };
      },
      async remove() {
        await request({ card: 'remove' });
      },
      insert,
      async restartPcscd() {
        const old = pcscd;
        const back = nextEvent('atr', 'the card did not come back after pcscd restarted');
        if (old) await endChild(old);
        pcscd = await startPcscd();
        await back;
      },
      output: () => log,
      stop() {
        stopped ??= cleanup();
        return stopped;
      },
    };
    return labCard;
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function waitFor(
  condition: () => boolean,
  child: ChildProcess,
  what: string,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!condition()) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what}: it exited (${child.exitCode ?? child.signalCode})\n${output()}`);
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${START_TIMEOUT_MS} ms\n${output()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
