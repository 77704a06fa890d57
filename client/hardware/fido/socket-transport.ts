// The lab transport: CTAPHID reports over a UNIX socket, exactly 64 bytes per report in each
// direction and no HID report-ID byte, so any CTAPHID client can drive the lab security key. It is used
// only when the caller passes a socket path; the app takes it from KEYPORT_LAB_SECURITY_KEY and shows
// the key as a lab key.
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { CtaphidError, REPORT_SIZE } from './ctaphid';
import type { HidTransport } from './device';

export const LAB_SECURITY_KEY_ENV = 'KEYPORT_LAB_SECURITY_KEY';

interface Waiter {
  resolve(report: Uint8Array): void;
  reject(error: unknown): void;
}

function closedError(): CtaphidError {
  return new CtaphidError('TRANSPORT_CLOSED', 'The lab security key closed the connection.', {
    source: 'local',
  });
}

export class SocketHidTransport implements HidTransport {
  readonly #socket: Socket;
  readonly #reports: Uint8Array[] = [];
  readonly #waiters: Waiter[] = [];
  #partial = new Uint8Array(0);
  #closed: CtaphidError | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => this.#onClose());
    socket.on('close', () => this.#onClose());
  }

  /** Connects to the lab key's socket. */
  static connect(path: string, options: { timeoutMs?: number } = {}): Promise<SocketHidTransport> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new CtaphidError('TIMEOUT', `No lab security key answered at ${path}.`, { source: 'local' }));
      }, options.timeoutMs ?? 5_000);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(
          new CtaphidError(
            'TRANSPORT_CLOSED',
            `Cannot reach the lab security key at ${path}: ${error.message}`,
            {
              source: 'local',
            },
          ),
        );
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new SocketHidTransport(socket));
      });
    });
  }

  write(report: Uint8Array): Promise<void> {
    if (report.length !== REPORT_SIZE) {
      return Promise.reject(
        new CtaphidError(
          'INVALID_PACKET_SIZE',
          `A CTAPHID report is ${REPORT_SIZE} bytes; got ${report.length}.`,
          {
            source: 'local',
          },
        ),
      );
    }
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      this.#socket.write(report, (error) => (error ? reject(closedError()) : resolve()));
    });
  }

  read(signal?: AbortSignal): Promise<Uint8Array> {
    const next = this.#reports.shift();
    if (next) return Promise.resolve(next);
    if (this.#closed) return Promise.reject(this.#closed);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: (report) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(report);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#socket.destroyed) return resolve();
      this.#socket.once('close', () => resolve());
      this.#socket.end();
      this.#socket.destroySoon();
    });
  }

  #onData(chunk: Buffer): void {
    // The stream may split or merge reports; cut it into 64-byte reports again.
    const data = new Uint8Array(this.#partial.length + chunk.length);
    data.set(this.#partial);
    data.set(chunk, this.#partial.length);
    let offset = 0;
    for (; offset + REPORT_SIZE <= data.length; offset += REPORT_SIZE) {
      const report = data.slice(offset, offset + REPORT_SIZE);
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve(report);
      else this.#reports.push(report);
    }
    this.#partial = data.slice(offset);
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = closedError();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#closed);
  }
}
