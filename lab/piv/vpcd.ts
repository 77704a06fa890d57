// The card's side of vsmartcard's vpcd protocol (the virtual reader driver inside pcscd): the card is a
// TCP client of vpcd. Each message either way is a 2-byte big-endian length and then the payload. A
// 1-byte payload from vpcd is a control message (0 power off, 1 power on, 2 reset, 4 send the ATR);
// anything longer is a command APDU, answered with the response APDU. Only "send the ATR" and APDUs get
// an answer. shared/design/LAB.md "Smart cards (pcscd + vsmartcard vpcd)".
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import type { PivCard } from './card';

export const VPCD_CONTROL = { POWER_OFF: 0, POWER_ON: 1, RESET: 2, GET_ATR: 4 } as const;
export const VPCD_DEFAULT_PORT = 35963;
const MAX_PAYLOAD = 0xffff;

export class VpcdProtocolError extends Error {
  override name = 'VpcdProtocolError';
}

export function encodeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_PAYLOAD) throw new VpcdProtocolError('payload longer than 65535 bytes');
  const out = new Uint8Array(payload.length + 2);
  out[0] = payload.length >> 8;
  out[1] = payload.length & 0xff;
  out.set(payload, 2);
  return out;
}

/** Reassembles frames from a TCP byte stream, however it was split. */
export class VpcdFramer {
  private buffer = new Uint8Array(0);

  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer, 0);
    joined.set(chunk, this.buffer.length);
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (joined.length - offset >= 2) {
      const length = ((joined[offset] as number) << 8) | (joined[offset + 1] as number);
      if (joined.length - offset - 2 < length) break;
      frames.push(joined.slice(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
    this.buffer = joined.slice(offset);
    return frames;
  }
}

export type VpcdEvent =
  | { event: 'connected' }
  | { event: 'disconnected' }
  | { event: 'power'; state: 'on' | 'off' | 'reset' }
  | { event: 'atr' };

/** What the card answers to one message from vpcd (undefined: no answer). */
export async function answerVpcdMessage(
  card: PivCard,
  message: Uint8Array,
  emit: (event: VpcdEvent) => void = () => {},
): Promise<Uint8Array | undefined> {
  if (message.length === 1) {
    switch (message[0]) {
      case VPCD_CONTROL.POWER_OFF:
        card.powerOff();
        emit({ event: 'power', state: 'off' });
        return undefined;
      case VPCD_CONTROL.POWER_ON:
        card.reset();
        emit({ event: 'power', state: 'on' });
        return undefined;
      case VPCD_CONTROL.RESET:
        card.reset();
        emit({ event: 'power', state: 'reset' });
        return undefined;
      case VPCD_CONTROL.GET_ATR:
        emit({ event: 'atr' });
        return card.atr;
      default:
        throw new VpcdProtocolError(`unknown vpcd control byte ${message[0]}`);
    }
  }
  if (message.length === 0) throw new VpcdProtocolError('empty vpcd message');
  return card.transmit(message);
}

export interface VpcdLinkOptions {
  card: PivCard;
  host?: string;
  port?: number;
  emit?: (event: VpcdEvent) => void;
  /** Called before each APDU reaches the card (statistics). */
  onApdu?: (apdu: Uint8Array, response: Uint8Array) => void;
  /** When the card leaves the reader: ends a waiting touch. */
  onRemoved?: () => void;
}

const RECONNECT_MS = 25;

/**
 * The card in the reader: connected to vpcd while inserted, reconnecting when pcscd goes away and comes
 * back, disconnected while removed (vpcd then reports the slot empty).
 */
export class VpcdLink {
  private socket: Socket | undefined;
  private inserted = false;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: VpcdLinkOptions) {}

  private emit(event: VpcdEvent): void {
    this.options.emit?.(event);
  }

  insert(): void {
    if (this.closed || this.inserted) return;
    this.inserted = true;
    this.connect();
  }

  /** Resolves once the connection to vpcd is closed. */
  async remove(): Promise<void> {
    this.inserted = false;
    clearTimeout(this.retry);
    this.retry = undefined;
    await this.drop();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.remove();
  }

  private async drop(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.destroy();
    await closed;
  }

  private connect(): void {
    if (!this.inserted || this.closed) return;
    const socket = createConnection({
      host: this.options.host ?? '127.0.0.1',
      port: this.options.port ?? VPCD_DEFAULT_PORT,
    });
    socket.setNoDelay(true);
    this.socket = socket;
    const framer = new VpcdFramer();
    let queue: Promise<void> = Promise.resolve();
    let connected = false;
    socket.on('connect', () => {
      connected = true;
      this.emit({ event: 'connected' });
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = framer.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        queue = queue
          .then(async () => {
            if (this.socket !== socket) return;
            const answer = await answerVpcdMessage(this.options.card, frame, (e) => this.emit(e));
            if (answer === undefined || this.socket !== socket) return;
            if (frame.length > 1) this.options.onApdu?.(frame, answer);
            socket.write(encodeFrame(answer));
          })
          .catch(() => {
            socket.destroy();
          });
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      // The reader saw the card go: what it had verified and authenticated is gone with the power.
      this.options.card.powerOff();
      this.options.onRemoved?.();
      if (connected) this.emit({ event: 'disconnected' });
      if (this.inserted && !this.closed) this.retry = setTimeout(() => this.connect(), RECONNECT_MS);
    });
  }
}
