// CTAPHID over a report transport (CTAP 2.1 §11.2): INIT, transactions with KEEPALIVE, CHANNEL_BUSY
// retry, CANCEL on abort and timeouts. All byte handling is in ctaphid.ts; this file only does I/O.
import { randomBytes } from 'node:crypto';
import {
  BROADCAST_CID,
  CTAPHID_CMD,
  CtaphidError,
  deviceError,
  fragmentMessage,
  INIT_NONCE_SIZE,
  MessageAssembler,
  parseInitResponse,
  parseKeepalive,
} from './ctaphid';
import type { InitResponse, KeepaliveStatus } from './ctaphid';

/**
 * One FIDO HID device, as 64-byte reports without the report-ID byte. `read` resolves with the next
 * input report and must reject promptly when `signal` aborts, without losing later reports.
 */
export interface HidTransport {
  write(report: Uint8Array): Promise<void>;
  read(signal?: AbortSignal): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface CtaphidDeviceOptions {
  /** Default limit for a whole transaction, user presence included. */
  timeoutMs?: number;
  /** Limit for the INIT exchange. */
  initTimeoutMs?: number;
  /** Delay between retries after CHANNEL_BUSY (CTAP 2.1 §11.2.9.1.6; 100 ms as LAB.md specifies). */
  busyRetryMs?: number;
  /** How long to wait, after CANCEL, for the key to answer the cancelled request. */
  cancelGraceMs?: number;
}

export interface TransactionOptions {
  /** Aborting sends CTAPHID_CANCEL and rejects with CtaphidError CANCELLED. */
  signal?: AbortSignal;
  onKeepalive?: (status: KeepaliveStatus) => void;
  timeoutMs?: number;
}

const DEFAULTS = { timeoutMs: 30_000, initTimeoutMs: 5_000, busyRetryMs: 100, cancelGraceMs: 1_000 };

function cancelled(): CtaphidError {
  return new CtaphidError('CANCELLED', 'The security key request was cancelled.', { source: 'local' });
}

function timedOut(ms: number): CtaphidError {
  return new CtaphidError(
    'TIMEOUT',
    `The security key did not answer within ${Math.round(ms / 1000)} s. Check that it is plugged in and try again.`,
    { source: 'local' },
  );
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Aborts with a typed reason on the caller's signal or the deadline, whichever comes first. */
function deadlineSignal(timeoutMs: number, user?: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(timedOut(timeoutMs)), timeoutMs);
  const onUserAbort = () => controller.abort(cancelled());
  if (user?.aborted) controller.abort(cancelled());
  else user?.addEventListener('abort', onUserAbort, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      user?.removeEventListener('abort', onUserAbort);
    },
  };
}

export class CtaphidDevice {
  readonly #transport: HidTransport;
  readonly #options: typeof DEFAULTS;
  #init: InitResponse | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(transport: HidTransport, options: CtaphidDeviceOptions = {}) {
    this.#transport = transport;
    this.#options = { ...DEFAULTS, ...options };
  }

  /** Opens a channel: INIT on the broadcast channel. */
  static async open(transport: HidTransport, options: CtaphidDeviceOptions = {}): Promise<CtaphidDevice> {
    const device = new CtaphidDevice(transport, options);
    await device.init();
    return device;
  }

  /** The INIT answer: channel, versions and capabilities. */
  get info(): InitResponse {
    if (!this.#init) throw new Error('CtaphidDevice.init() has not completed.');
    return this.#init;
  }

  /**
   * CTAP 2.1 §11.2.9.1.3: INIT with an 8-byte random nonce on the broadcast channel; an answer that
   * does not echo the nonce is rejected (INIT_NONCE_MISMATCH).
   */
  init(options: { signal?: AbortSignal } = {}): Promise<InitResponse> {
    return this.#serialize(async () => {
      const nonce = new Uint8Array(randomBytes(INIT_NONCE_SIZE));
      const payload = await this.#transact(BROADCAST_CID, CTAPHID_CMD.INIT, nonce, {
        signal: options.signal,
        timeoutMs: this.#options.initTimeoutMs,
      });
      this.#init = parseInitResponse(nonce, payload);
      return this.#init;
    });
  }

  /**
   * Sends a CTAP2 command (CTAPHID_CBOR: command byte + CBOR parameters) and returns the response:
   * status byte + CBOR body, for ctap2.ts to parse.
   */
  cbor(command: number, params: Uint8Array, options: TransactionOptions = {}): Promise<Uint8Array> {
    const payload = new Uint8Array(1 + params.length);
    payload[0] = command;
    payload.set(params, 1);
    return this.#serialize(() => this.#transact(this.#cid(), CTAPHID_CMD.CBOR, payload, options));
  }

  ping(data: Uint8Array, options: TransactionOptions = {}): Promise<Uint8Array> {
    return this.#serialize(() => this.#transact(this.#cid(), CTAPHID_CMD.PING, data, options));
  }

  async wink(options: TransactionOptions = {}): Promise<void> {
    await this.#serialize(() => this.#transact(this.#cid(), CTAPHID_CMD.WINK, new Uint8Array(0), options));
  }

  close(): Promise<void> {
    return this.#transport.close();
  }

  #cid(): number {
    return this.info.cid;
  }

  #serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #transact(
    cid: number,
    cmd: number,
    payload: Uint8Array,
    options: TransactionOptions,
  ): Promise<Uint8Array> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    if (options.signal?.aborted) throw cancelled();
    const deadline = deadlineSignal(timeoutMs, options.signal);
    const reports = fragmentMessage(cid, cmd, payload);
    let sent = false;
    try {
      for (;;) {
        for (const report of reports) await this.#transport.write(report);
        sent = true;
        try {
          return await this.#receive(cid, cmd, deadline.signal, options.onKeepalive);
        } catch (error) {
          if (
            error instanceof CtaphidError &&
            error.code === 'CHANNEL_BUSY' &&
            error.details.source === 'device'
          ) {
            await delay(this.#options.busyRetryMs, deadline.signal);
            continue;
          }
          throw error;
        }
      }
    } catch (error) {
      if (!deadline.signal.aborted) throw error;
      const reason: unknown = deadline.signal.reason;
      // CTAP 2.1 §11.2.9.1.5: CANCEL applies to a pending CBOR request; the key then answers it with
      // CTAP2_ERR_KEEPALIVE_CANCEL, which is read and dropped so the channel is clean for the next call.
      if (sent && cmd === CTAPHID_CMD.CBOR) await this.#cancel(cid, cmd);
      throw reason instanceof CtaphidError ? reason : cancelled();
    } finally {
      deadline.dispose();
    }
  }

  async #receive(
    cid: number,
    cmd: number,
    signal: AbortSignal,
    onKeepalive?: (status: KeepaliveStatus) => void,
  ): Promise<Uint8Array> {
    const assembler = new MessageAssembler({ cid });
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const report = await this.#transport.read(signal);
      let message;
      try {
        message = assembler.push(report);
      } catch (error) {
        // Other programs' channels share the device's input reports (libfido2 skips them too).
        if (error instanceof CtaphidError && error.code === 'INVALID_CHANNEL') continue;
        throw error;
      }
      if (!message) continue;
      if (message.cmd === CTAPHID_CMD.KEEPALIVE) {
        onKeepalive?.(parseKeepalive(message.payload));
        continue;
      }
      if (message.cmd === CTAPHID_CMD.ERROR) throw deviceError(message.payload);
      if (message.cmd !== cmd) {
        throw new CtaphidError(
          'UNEXPECTED_RESPONSE',
          `The security key answered command 0x${cmd.toString(16)} with 0x${message.cmd.toString(16)}.`,
          { source: 'local', cid },
        );
      }
      return message.payload;
    }
  }

  async #cancel(cid: number, cmd: number): Promise<void> {
    const [report] = fragmentMessage(cid, CTAPHID_CMD.CANCEL, new Uint8Array(0));
    const grace = new AbortController();
    const timer = setTimeout(
      () => grace.abort(timedOut(this.#options.cancelGraceMs)),
      this.#options.cancelGraceMs,
    );
    try {
      if (report) await this.#transport.write(report);
      await this.#receive(cid, cmd, grace.signal);
    } catch {
      // Whatever the key answers (KEEPALIVE_CANCEL, an error, or nothing), the caller gets CANCELLED.
    } finally {
      clearTimeout(timer);
    }
  }
}
