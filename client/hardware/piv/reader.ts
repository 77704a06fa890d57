// PC/SC through the `pcsclite` package: one context on pcscd, its readers and their card events, a
// shared connection to a card and transmit. Nothing PIV here; the session (session.ts) drives it.
//
// pcsclite facts this module is built around (node-pcsclite 1.0.1, src/*.cpp):
// - `pcsclite()` throws synchronously when pcscd is unreachable; it lists readers on a thread and emits
//   'reader' for each, then 'status' on each reader ({state, atr}) as cards come and go.
// - When pcscd goes away, the context's thread emits 'error' and stops, and every reader emits 'error'
//   then 'end'. A reader object keeps its dead PC/SC context for ever, so surviving a pcscd restart means
//   a new `pcsclite()` context with new reader objects. An 'error' with no listener would crash the
//   process, so every emitter gets one.
// - Each reader and the context hold a native thread: close() them all, or the process never exits.
// - libpcsclite reads PCSCLITE_CSOCK_NAME once per process, at its first connection to pcscd.
import { EventEmitter } from 'node:events';
import { PivError, invalidArgument } from './errors';
import type { ReaderInfo } from './pcsc';
import {
  SCARD_PROTOCOL_T0,
  SCARD_PROTOCOL_T1,
  SCARD_SHARE_SHARED,
  cardEventCount,
  cardPresentIn,
  cardRemoved,
  pcscError,
} from './pcsc';

type Callback<T> = (error: unknown, value: T) => void;

/** The surface of pcsclite's CardReader this module uses. */
interface NativeReader extends EventEmitter {
  name: string;
  connected: boolean;
  connect(options: { share_mode: number; protocol: number }, callback: Callback<number>): void;
  disconnect(disposition: number, callback: (error: unknown) => void): void;
  transmit(data: Buffer, responseLength: number, protocol: number, callback: Callback<Buffer>): void;
  close(): void;
}

/** The surface of pcsclite's PCSCLite context this module uses. */
interface NativeContext extends EventEmitter {
  readers: Record<string, NativeReader>;
  start(callback: (error: unknown, readers: Buffer) => void): void;
  close(): void;
}

type PcscLite = () => NativeContext;

let pcscLite: Promise<PcscLite> | undefined;
let socketInUse: string | undefined;

/**
 * pcsclite, loaded on first use (as node-hid is): a machine without libpcsclite (or without the build)
 * has no PIV, and everything else still runs.
 */
async function loadPcscLite(socketPath: string | undefined): Promise<PcscLite> {
  const wanted = socketPath ?? process.env.PCSCLITE_CSOCK_NAME ?? '';
  if (socketInUse !== undefined && socketInUse !== wanted)
    throw invalidArgument(
      `This process already talks to pcscd at "${socketInUse || 'the default socket'}"; ` +
        `libpcsclite cannot switch to "${wanted || 'the default socket'}".`,
    );
  if (socketPath !== undefined) process.env.PCSCLITE_CSOCK_NAME = socketPath;
  pcscLite ??= import('pcsclite').then((module) => (module.default ?? module) as unknown as PcscLite);
  try {
    const open = await pcscLite;
    socketInUse = wanted;
    return open;
  } catch (error) {
    pcscLite = undefined;
    throw new PivError(
      'PCSC_UNAVAILABLE',
      'Smart cards are not available: the pcsclite module did not load ' +
        `(${error instanceof Error ? error.message : String(error)}). Install libpcsclite1 and run \`npm install\`.`,
    );
  }
}

/** How long to wait for pcscd's first list of readers before going on with what is there. */
const FIRST_LISTING_TIMEOUT_MS = 5_000;
/** How long to wait for each reader's first state. */
const FIRST_STATUS_TIMEOUT_MS = 5_000;
const SHORT_RESPONSE_BUFFER = 256 + 2;
const EXTENDED_RESPONSE_BUFFER = 65536 + 2;

export type CardEvent = { type: 'inserted' | 'removed'; reader: string };

/** One PC/SC context: the readers pcscd has, their cards, and connections to them. */
export class PcscClient {
  /** Card insertions and removals ('card'), any reader state ('state'), pcscd going ('service-lost'), close ('closed'). */
  readonly events = new EventEmitter();
  private readonly states = new Map<string, number | undefined>();
  private lost = false;
  private closed = false;

  private constructor(private readonly native: NativeContext) {}

  /**
   * A context on pcscd with its first list of readers and their states. `socketPath` is pcscd's socket
   * (PCSCLITE_CSOCK_NAME); it can be set once per process.
   */
  static async start(options: { socketPath?: string } = {}): Promise<PcscClient> {
    const open = await loadPcscLite(options.socketPath);
    let listed!: () => void;
    const firstListing = new Promise<void>((resolve) => (listed = resolve));
    let native: NativeContext;
    try {
      native = open();
    } catch (error) {
      throw pcscError(error, 'connect to the smart card service');
    }
    // pcsclite calls start() on the next tick and gives no signal that its first listing is done;
    // wrapping start() for this one instance gives one, so "no reader" is known rather than guessed.
    const start = native.start.bind(native);
    native.start = (callback) =>
      start((error, readers) => {
        callback(error, readers);
        listed();
      });
    const client = new PcscClient(native);
    native.on('error', () => client.serviceLost());
    native.on('reader', (reader: NativeReader) => client.addReader(reader));
    await withTimeout(firstListing, FIRST_LISTING_TIMEOUT_MS);
    await client.firstStates();
    return client;
  }

  /** False once pcscd went away (or the client was closed): a new client is needed. */
  get alive(): boolean {
    return !this.lost && !this.closed;
  }

  readers(): ReaderInfo[] {
    return [...this.states].map(([name, state]) => ({
      name,
      cardPresent: state === undefined ? undefined : cardPresentIn(state),
    }));
  }

  cardPresent(reader: string): boolean | undefined {
    const state = this.states.get(reader);
    return state === undefined ? undefined : cardPresentIn(state);
  }

  /** Resolves once `test` holds for the readers' states; rejects with TIMEOUT, or when pcscd goes. */
  async waitFor(test: () => boolean, timeoutMs: number, what: string, signal?: AbortSignal): Promise<void> {
    if (test()) return;
    if (this.closed)
      throw new PivError('SESSION_CLOSED', `The smart card context is closed; not waiting for ${what}.`);
    await new Promise<void>((resolve, reject) => {
      const done = (error?: PivError) => {
        clearTimeout(timer);
        this.events.off('state', check);
        this.events.off('service-lost', lost);
        this.events.off('closed', closed);
        signal?.removeEventListener('abort', aborted);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (test()) done();
      };
      const lost = () =>
        done(
          new PivError(
            'PCSC_UNAVAILABLE',
            `The smart card service (pcscd) went away while waiting for ${what}.`,
          ),
        );
      const closed = () =>
        done(new PivError('SESSION_CLOSED', `The smart card context closed while waiting for ${what}.`));
      const aborted = () => done(new PivError('CANCELLED', `Stopped waiting for ${what}.`));
      const timer = setTimeout(
        () =>
          done(
            new PivError('TIMEOUT', `Waited ${Math.round(timeoutMs / 1000)} s for ${what}; it did not come.`),
          ),
        timeoutMs,
      );
      this.events.on('state', check);
      this.events.on('service-lost', lost);
      this.events.on('closed', closed);
      signal?.addEventListener('abort', aborted);
      if (signal?.aborted) aborted();
    });
  }

  /** A shared connection (other applications keep access) to the card in `reader`. */
  async connect(reader: string): Promise<CardConnection> {
    const native = this.native.readers[reader];
    if (!native || !this.alive)
      throw new PivError(
        'NO_READER',
        `The smart card reader "${reader}" is gone. Plug it in again and try again.`,
      );
    if (native.connected) {
      // A handle left from a card that was pulled: pcsclite's connect() would answer "connected".
      await new Promise<void>((resolve) => native.disconnect(0, () => resolve()));
      native.connected = false;
    }
    const protocol = await new Promise<number>((resolve, reject) =>
      native.connect(
        { share_mode: SCARD_SHARE_SHARED, protocol: SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1 },
        (error, value) => (error ? reject(pcscError(error, 'connect to the card', reader)) : resolve(value)),
      ),
    );
    return new CardConnection(native, protocol);
  }

  /** Ends every native thread of this context. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const reader of Object.values(this.native.readers)) {
      try {
        reader.close();
      } catch {
        // Its thread already ended with pcscd.
      }
    }
    try {
      this.native.close();
    } catch {
      // Already stopped on error.
    }
    this.events.emit('closed');
    this.events.removeAllListeners();
  }

  private addReader(reader: NativeReader): void {
    const name = reader.name;
    this.states.set(name, undefined);
    reader.on('error', () => this.serviceLost());
    reader.on('status', (status: { state: number }) => {
      const before = this.states.get(name);
      this.states.set(name, status.state);
      const now = cardPresentIn(status.state);
      if (before !== undefined) {
        const was = cardPresentIn(before);
        // pcsc-lite counts card events in the state's upper 16 bits: a card present before and now, with
        // events between, was pulled and put back faster than this thread woke.
        if (was && now && cardEventCount(before) !== cardEventCount(status.state))
          this.events.emit('card', { type: 'removed', reader: name } as CardEvent);
        if (was !== now || (now && cardEventCount(before) !== cardEventCount(status.state)))
          this.events.emit('card', { type: now ? 'inserted' : 'removed', reader: name } as CardEvent);
      }
      this.events.emit('state', name);
    });
    reader.on('end', () => {
      const before = this.states.get(name);
      this.states.delete(name);
      if (before !== undefined && cardPresentIn(before))
        this.events.emit('card', { type: 'removed', reader: name } as CardEvent);
      this.events.emit('state', name);
    });
  }

  private async firstStates(): Promise<void> {
    const known = () => [...this.states.values()].every((state) => state !== undefined);
    await withTimeout(
      this.waitFor(known, FIRST_STATUS_TIMEOUT_MS, 'the readers').catch(() => {}),
      FIRST_STATUS_TIMEOUT_MS,
    );
  }

  /** Tells this context that pcscd is gone (a transmit said so before its own threads did). */
  markLost(): void {
    this.serviceLost();
  }

  private serviceLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.events.emit('service-lost');
  }
}

/** One card connection: transmit bytes, disconnect. */
export class CardConnection {
  private gone = false;

  constructor(
    private readonly native: NativeReader,
    readonly protocol: number,
  ) {}

  get reader(): string {
    return this.native.name;
  }

  /** Sends one command APDU; rejects with a PivError carrying the PC/SC code. */
  transmit(command: Uint8Array, extended = false): Promise<Uint8Array> {
    if (this.gone) return Promise.reject(cardRemoved('talk to the card', this.reader));
    return new Promise((resolve, reject) =>
      this.native.transmit(
        Buffer.from(command),
        extended ? EXTENDED_RESPONSE_BUFFER : SHORT_RESPONSE_BUFFER,
        this.protocol,
        (error, response) =>
          error
            ? reject(pcscError(error, 'talk to the card', this.reader))
            : resolve(new Uint8Array(response)),
      ),
    );
  }

  /** Ends the connection; `reset` drops the card's security state (a verified PIN) for everyone. */
  async disconnect(reset: boolean): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    await new Promise<void>((resolve) => this.native.disconnect(reset ? 1 : 0, () => resolve()));
    // A failed disconnect (card already gone) leaves pcsclite believing it is connected.
    this.native.connected = false;
  }

  /** Marks it unusable without talking to pcscd (the card or pcscd is gone). */
  abandon(): void {
    this.gone = true;
  }
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void promise.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
