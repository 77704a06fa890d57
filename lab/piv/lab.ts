// startLabPivCard: the lab's virtual PIV card on a real pcscd, for tests, benchmarks and the demo.
// pcscd (with vsmartcard's vpcd reader driver) and the card process run in a private network and mount
// namespace (namespace.ts); clients on the host reach pcscd through its socket, PCSCLITE_CSOCK_NAME.
// Debian packages: pcscd, vsmartcard-vpcd (lab/system-packages.mjs installs them).
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ControlClient, ControlEvent, ControlRequest } from './control';
import { connectControl, MAX_UNIX_SOCKET_PATH } from './control';
import type { PrivateNamespace } from './namespace';
import { createPrivateNamespace, endChild } from './namespace';
import type { LabPcscd } from './pcscd';
import { startPcscd } from './pcscd';
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
  /** Pulls the card out: resolves once pcscd has seen it go (its poll is every 400 ms). */
  remove(): Promise<void>;
  /** Puts it back: resolves once pcscd has seen it, powered it and published it to clients. */
  insert(): Promise<void>;
  /** Stops and starts pcscd (clients' handles die); resolves once pcscd has the card again. */
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
  const record = (source: string, chunk: string): void => {
    log = (log + chunk.replace(/^(?=.)/gm, `[${source}] `)).slice(-OUTPUT_LIMIT);
  };
  const output = (): string => log;
  let namespace: PrivateNamespace | undefined;
  let pcscd: LabPcscd | undefined;
  let cardProcess: ChildProcess | undefined;
  let control: ControlClient | undefined;
  const cleanup = async (): Promise<void> => {
    control?.close();
    if (cardProcess) await endChild(cardProcess);
    await pcscd?.stop();
    await namespace?.stop();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const path of [socketPath, controlSocket]) {
      if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH) throw new Error(`socket path too long: ${path}`);
    }
    const state = await loadOrCreateCardState(statePath, options);
    const ns = await createPrivateNamespace(dir);
    namespace = ns;
    const launchPcscd = (): Promise<LabPcscd> =>
      startPcscd({
        namespace: ns,
        socketPath,
        readerName: LAB_READER_NAME,
        record: (chunk) => record('pcscd', chunk),
        output,
      });
    pcscd = await launchPcscd();

    cardProcess = spawnCard(ns, statePath, controlSocket, options);
    cardProcess.stderr?.on('data', (chunk: Buffer) => record('card', chunk.toString()));
    await cardReady(cardProcess, (chunk) => record('card', chunk), output);
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
    const request = async (body: ControlRequest) => {
      const reply = await client.request(body);
      if (!reply.ok && reply.reply !== 'touch') {
        throw new Error(`the card refused ${JSON.stringify(body)}: ${reply.error ?? ''}`);
      }
      return reply;
    };

    // Whether the card is in the reader as pcscd sees it: remove() and insert() wait until pcscd agrees,
    // since a card put back within one of its polls would never be seen to leave.
    let inserted = false;
    const insert = async (): Promise<void> => {
      if (inserted) return;
      await request({ card: 'insert' });
      await (pcscd as LabPcscd).until(true);
      inserted = true;
    };
    await insert();

    let stopped: Promise<void> | undefined;
    return {
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
        if (touchWaiting) return Promise.resolve();
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            events.off('touch-needed', onTouch);
            reject(new Error(`the card asked for no touch within ${START_TIMEOUT_MS} ms`));
          }, START_TIMEOUT_MS);
          const onTouch = (): void => {
            clearTimeout(timer);
            resolve();
          };
          events.once('touch-needed', onTouch);
        });
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
        if (!inserted) return;
        await request({ card: 'remove' });
        await (pcscd as LabPcscd).until(false);
        inserted = false;
      },
      insert,
      async restartPcscd() {
        await pcscd?.stop();
        pcscd = await launchPcscd();
        // An inserted card reconnects by itself; pcscd finds it at its first poll.
        if (inserted) await pcscd.until(true);
      },
      output,
      stop() {
        stopped ??= cleanup();
        return stopped;
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** The card process, inside the namespace; it starts with the card out of the reader. */
function spawnCard(
  ns: PrivateNamespace,
  statePath: string,
  controlSocket: string,
  options: LabPivCardOptions,
): ChildProcess {
  const touchTimeout =
    options.touchTimeoutMs === undefined ? [] : ['--touch-timeout-ms', String(options.touchTimeoutMs)];
  return ns.spawn(
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
      ...touchTimeout,
    ],
    { cwd: repoRoot, env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
}

/** Waits for the card process's ready line on stdout. */
async function cardReady(
  child: ChildProcess,
  record: (chunk: string) => void,
  output: () => string,
): Promise<void> {
  let stdout = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail('did not say it was ready'), START_TIMEOUT_MS);
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(new Error(`the card process ${why} within ${START_TIMEOUT_MS} ms\n${output()}`));
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      record(chunk.toString());
      if (/"event":"ready"/.test(stdout)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal})`));
    child.once('error', (error) => fail(`could not start: ${error.message}`));
  });
}
