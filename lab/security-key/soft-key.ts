// The software security key: CTAPHID over a UNIX socket (64-byte reports, one per write, no report-ID
// byte), plus a control socket at `<socket>.control` that plays the person touching the key.
// shared/design/LAB.md "Security keys over HID": there is no /dev/uhid here, so this is how a key appears.
//
// Control protocol, JSON lines both ways:
//   in:  {"touch":"approve"|"deny"|"timeout"}   answer the presence request that is waiting
//        {"power":"cycle"}                       unplug and replug (clears PIN_AUTH_BLOCKED, tokens)
//   out: {"event":"up-needed"} {"event":"cancelled"} {"event":"presence","outcome":...} {"event":"wink"}
//        {"reply":"touch"|"power","ok":true|false,"error"?:string}
import { EventEmitter } from 'node:events';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { Authenticator } from './authenticator';
import type { PresenceOutcome, PresenceSource } from './authenticator';
import { createAttestationLeaf, createAuthorities } from './attestation-ca';
import { CtaphidDevice, REPORT_SIZE } from './ctaphid-device';
import type { Port } from './ctaphid-device';
import { MAX_PIN_RETRIES, readState, STATE_VERSION, writeState } from './state';
import type { SoftKeyState } from './state';

/** The lab key's model: a fixed AAGUID, so a cluster can recognise it. */
export const DEFAULT_AAGUID = '4b657970-6f72-4c61-8b00-000000000001';
const DEFAULT_MANUAL_TOUCH_TIMEOUT_MS = 30_000;
// sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
const MAX_UNIX_SOCKET_PATH = 107;

export type TouchMode = { kind: 'auto'; delayMs: number } | { kind: 'manual' };
export type TouchDecision = 'approve' | 'deny' | 'timeout';

export type SoftKeyEvent =
  | { event: 'up-needed' }
  | { event: 'cancelled' }
  | { event: 'presence'; outcome: PresenceOutcome }
  | { event: 'wink' };

export interface SoftKeyOptions {
  socketPath: string;
  statePath: string;
  /** 'auto' (default), 'auto:MS', 'manual', or the parsed form. */
  touch?: TouchMode | string;
  /** Sets this PIN on a key that has none; a key whose PIN differs refuses to start. */
  pin?: string;
  aaguid?: string;
  /** In manual mode, how long a presence request waits before USER_ACTION_TIMEOUT. */
  manualTouchTimeoutMs?: number;
}

export interface SoftKey {
  socketPath: string;
  controlPath: string;
  statePath: string;
  aaguid: string;
  /** PEM of the lab attestation root: what a cluster lists in attestation_allowed_cas / _denied_cas. */
  attestationRootPem: string;
  attestationIntermediatePem: string;
  /** Emits 'event' with every SoftKeyEvent, and each one under its own name too. */
  events: EventEmitter;
  /** Answers the waiting presence request; false when nothing is waiting. */
  touch(decision: TouchDecision): boolean;
  powerCycle(): void;
  stop(): Promise<void>;
}

export function parseTouchMode(text: string): TouchMode {
  if (text === 'manual') return { kind: 'manual' };
  if (text === 'auto') return { kind: 'auto', delayMs: 0 };
  const m = /^auto:(\d{1,7})$/.exec(text);
  if (m) return { kind: 'auto', delayMs: Number(m[1]) };
  throw new Error(`--touch must be auto, auto:MS or manual, not "${text}"`);
}

/** Reads the state file, creating it (with a new attestation CA) on first use. */
export async function loadOrCreateState(statePath: string, aaguid?: string): Promise<SoftKeyState> {
  let state = readState(statePath);
  let changed = false;
  if (!state) {
    const authorities = await createAuthorities();
    const wanted = aaguid ?? DEFAULT_AAGUID;
    state = {
      version: STATE_VERSION,
      aaguid: wanted,
      signCount: 0,
      pin: null,
      credentials: [],
      attestation: { ...authorities, leaf: await createAttestationLeaf(authorities.intermediate, wanted) },
    };
    changed = true;
  } else if (aaguid !== undefined && aaguid.toLowerCase() !== state.aaguid.toLowerCase()) {
    state.aaguid = aaguid;
    changed = true;
  }
  if (state.attestation.leaf.aaguid.toLowerCase() !== state.aaguid.toLowerCase()) {
    // The attestation certificate names the AAGUID (id-fido-gen-ce-aaguid), so a new model needs a new one.
    state.attestation.leaf = await createAttestationLeaf(state.attestation.intermediate, state.aaguid);
    changed = true;
  }
  if (changed) writeState(statePath, state);
  return state;
}

/** The attestation CA of a state file as PEM (root first, then the intermediate). */
export async function exportAttestationCa(
  statePath: string,
): Promise<{ rootPem: string; intermediatePem: string }> {
  const state = await loadOrCreateState(statePath);
  return { rootPem: state.attestation.root.certPem, intermediatePem: state.attestation.intermediate.certPem };
}

export async function startSoftKey(options: SoftKeyOptions): Promise<SoftKey> {
  const controlPath = `${options.socketPath}.control`;
  if (Buffer.byteLength(controlPath) > MAX_UNIX_SOCKET_PATH) {
    throw new Error(`socket path too long for a UNIX socket: ${controlPath}`);
  }
  const touchMode =
    typeof options.touch === 'string'
      ? parseTouchMode(options.touch)
      : (options.touch ?? { kind: 'auto', delayMs: 0 });
  const state = await loadOrCreateState(options.statePath, options.aaguid);
  if (options.pin !== undefined) applyInitialPin(state, options.pin, options.statePath);

  const events = new EventEmitter();
  const emit = (e: SoftKeyEvent): void => {
    events.emit('event', e);
    events.emit(e.event, e);
  };
  const presence = new Presence(
    touchMode,
    options.manualTouchTimeoutMs ?? DEFAULT_MANUAL_TOUCH_TIMEOUT_MS,
    emit,
  );
  const authenticator = new Authenticator({
    state,
    save: (s) => writeState(options.statePath, s),
    presence,
  });
  const device = new CtaphidDevice({
    handleCbor: (request, tx) => authenticator.handle(request, tx),
    onWink: () => emit({ event: 'wink' }),
  });

  const hidSockets = new Set<Socket>();
  const hidServer = createServer((socket) => {
    hidSockets.add(socket);
    const port: Port = {
      send: (report) => {
        if (!socket.destroyed) socket.write(report);
      },
    };
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= REPORT_SIZE) {
        device.receive(new Uint8Array(pending.subarray(0, REPORT_SIZE)), port);
        pending = pending.subarray(REPORT_SIZE);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      hidSockets.delete(socket);
      device.detach(port);
    });
  });

  const controlSockets = new Set<Socket>();
  const controlServer = createServer((socket) => {
    controlSockets.add(socket);
    const write = (value: object): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(value)}\n`);
    };
    const forward = (e: SoftKeyEvent): void => write(e);
    events.on('event', forward);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        const line = text.slice(0, nl).trim();
        text = text.slice(nl + 1);
        if (line) write(controlCommand(line, presence, authenticator));
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      controlSockets.delete(socket);
      events.off('event', forward);
    });
  });

  await listen(hidServer, options.socketPath);
  try {
    await listen(controlServer, controlPath);
  } catch (err) {
    await close(hidServer, hidSockets, options.socketPath);
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    socketPath: options.socketPath,
    controlPath,
    statePath: options.statePath,
    aaguid: state.aaguid,
    attestationRootPem: state.attestation.root.certPem,
    attestationIntermediatePem: state.attestation.intermediate.certPem,
    events,
    touch: (decision) => presence.answer(decision),
    powerCycle: () => authenticator.powerCycle(),
    stop: () => {
      stopped ??= (async () => {
        device.close();
        presence.close();
        await Promise.all([
          close(hidServer, hidSockets, options.socketPath),
          close(controlServer, controlSockets, controlPath),
        ]);
      })();
      return stopped;
    },
  };
}

function controlCommand(line: string, presence: Presence, authenticator: Authenticator): object {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    return { reply: 'error', ok: false, error: 'not JSON' };
  }
  const m = (typeof message === 'object' && message !== null ? message : {}) as Record<string, unknown>;
  if (m.touch === 'approve' || m.touch === 'deny' || m.touch === 'timeout') {
    return presence.answer(m.touch)
      ? { reply: 'touch', ok: true }
      : { reply: 'touch', ok: false, error: 'no request is waiting for presence' };
  }
  if (m.power === 'cycle') {
    authenticator.powerCycle();
    return { reply: 'power', ok: true };
  }
  return {
    reply: 'error',
    ok: false,
    error: 'expected {"touch":"approve"|"deny"|"timeout"} or {"power":"cycle"}',
  };
}

function applyInitialPin(state: SoftKeyState, pin: string, statePath: string): void {
  const bytes = Buffer.from(pin, 'utf8');
  if ([...pin].length < 4 || bytes.length > 63)
    throw new Error('--pin must have 4 to 63 bytes (at least 4 characters)');
  const hash = createHash('sha256').update(bytes).digest().subarray(0, 16).toString('hex');
  if (state.pin === null) {
    state.pin = { hash, retries: MAX_PIN_RETRIES };
    writeState(statePath, state);
  } else if (state.pin.hash !== hash) {
    throw new Error(`${statePath} already has a different PIN; use another state file`);
  }
}

/** "Touch": automatic, delayed, or answered over the control channel. */
class Presence implements PresenceSource {
  private waiting: ((outcome: PresenceOutcome) => void) | undefined;

  constructor(
    private readonly mode: TouchMode,
    private readonly manualTimeoutMs: number,
    private readonly emit: (e: SoftKeyEvent) => void,
  ) {}

  request(signal: AbortSignal): Promise<PresenceOutcome> {
    this.waiting?.('cancelled');
    if (signal.aborted) {
      this.emit({ event: 'cancelled' });
      return Promise.resolve('cancelled');
    }
    return new Promise((resolve) => {
      const finish = (outcome: PresenceOutcome): void => {
        if (this.waiting !== finish) return;
        this.waiting = undefined;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.emit(outcome === 'cancelled' ? { event: 'cancelled' } : { event: 'presence', outcome });
        resolve(outcome);
      };
      const onAbort = (): void => finish('cancelled');
      this.waiting = finish;
      signal.addEventListener('abort', onAbort);
      const timer =
        this.mode.kind === 'auto'
          ? setTimeout(() => finish('approve'), this.mode.delayMs)
          : setTimeout(() => finish('timeout'), this.manualTimeoutMs);
      // After the timer exists: a listener may answer synchronously.
      this.emit({ event: 'up-needed' });
    });
  }

  answer(decision: TouchDecision): boolean {
    if (!this.waiting) return false;
    this.waiting(decision);
    return true;
  }

  close(): void {
    this.waiting?.('cancelled');
  }
}

async function listen(server: Server, path: string): Promise<void> {
  removeStaleSocket(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
    else throw new Error(`${path} exists and is not a socket`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function close(server: Server, sockets: Set<Socket>, path: string): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  try {
    unlinkSync(path);
  } catch {
    // already gone: net.Server removes its socket file on close
  }
}

/** Plays a finger that touches `key` every time it asks, while `work` runs (for keys in 'manual' mode). */
export async function touchingWhile<T>(key: SoftKey, work: () => Promise<T>): Promise<T> {
  const approve = () => key.touch('approve');
  key.events.on('up-needed', approve);
  try {
    return await work();
  } finally {
    key.events.off('up-needed', approve);
  }
}
