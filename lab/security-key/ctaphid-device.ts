// The device side of CTAPHID (CTAP 2.1 §11.2), without I/O: 64-byte reports in, 64-byte reports out
// through the Port each report arrived on. The socket server (soft-key.ts) only moves reports.
// Wire constants cross-checked against libfido2 (fido/hid.h, src/fido/param.h) and python-fido2.

export const REPORT_SIZE = 64;
export const INIT_DATA_SIZE = REPORT_SIZE - 7; // CID(4) | CMD(1) | BCNT(2)
export const CONT_DATA_SIZE = REPORT_SIZE - 5; // CID(4) | SEQ(1)
/** CTAP 2.1 §11.2.4: 57 + 128 × 59. */
export const MAX_MESSAGE_SIZE = INIT_DATA_SIZE + 128 * CONT_DATA_SIZE;
export const BROADCAST_CID = 0xffffffff;

export const Cmd = {
  PING: 0x01,
  MSG: 0x03,
  LOCK: 0x04,
  INIT: 0x06,
  WINK: 0x08,
  CBOR: 0x10,
  CANCEL: 0x11,
  KEEPALIVE: 0x3b,
  ERROR: 0x3f,
} as const;

export const HidError = {
  INVALID_CMD: 0x01,
  INVALID_PAR: 0x02,
  INVALID_LEN: 0x03,
  INVALID_SEQ: 0x04,
  MSG_TIMEOUT: 0x05,
  CHANNEL_BUSY: 0x06,
  LOCK_REQUIRED: 0x0a,
  INVALID_CHANNEL: 0x0b,
  OTHER: 0x7f,
} as const;

export const KeepaliveStatus = { PROCESSING: 1, UP_NEEDED: 2 } as const;
export type KeepaliveStatus = (typeof KeepaliveStatus)[keyof typeof KeepaliveStatus];

// CTAP 2.1 §11.2.9.1.3: capability flags in the INIT response. NMSG: no U2F (CTAPHID_MSG). LOCK is
// answered with INVALID_CMD: one lab key has no other clients to lock out.
const CAPABILITY_WINK = 0x01;
const CAPABILITY_CBOR = 0x04;
const CAPABILITY_NMSG = 0x08;
const CTAPHID_PROTOCOL_VERSION = 2;
const DEVICE_VERSION = [1, 0, 0] as const;

export type Packet =
  | { kind: 'init'; cid: number; cmd: number; bcnt: number; data: Uint8Array }
  | { kind: 'cont'; cid: number; seq: number; data: Uint8Array };

export function parsePacket(report: Uint8Array): Packet {
  if (report.length !== REPORT_SIZE)
    throw new RangeError(`a report is ${REPORT_SIZE} bytes, got ${report.length}`);
  const view = new DataView(report.buffer, report.byteOffset, report.byteLength);
  const cid = view.getUint32(0);
  const b = report[4] ?? 0;
  if (b & 0x80) {
    return { kind: 'init', cid, cmd: b & 0x7f, bcnt: view.getUint16(5), data: report.subarray(7) };
  }
  return { kind: 'cont', cid, seq: b, data: report.subarray(5) };
}

/** Splits one message into 64-byte reports (zero padded). */
export function fragment(cid: number, cmd: number, payload: Uint8Array): Uint8Array[] {
  if (payload.length > MAX_MESSAGE_SIZE)
    throw new RangeError(`message of ${payload.length} bytes is too long`);
  const reports: Uint8Array[] = [];
  const first = new Uint8Array(REPORT_SIZE);
  const view = new DataView(first.buffer);
  view.setUint32(0, cid);
  first[4] = 0x80 | cmd;
  view.setUint16(5, payload.length);
  first.set(payload.subarray(0, INIT_DATA_SIZE), 7);
  reports.push(first);
  for (let offset = INIT_DATA_SIZE, seq = 0; offset < payload.length; offset += CONT_DATA_SIZE, seq++) {
    const cont = new Uint8Array(REPORT_SIZE);
    new DataView(cont.buffer).setUint32(0, cid);
    cont[4] = seq;
    cont.set(payload.subarray(offset, offset + CONT_DATA_SIZE), 5);
    reports.push(cont);
  }
  return reports;
}

/** Where reports come from and go back to: one connection of the socket server. */
export interface Port {
  send(report: Uint8Array): void;
}

export interface CborTransaction {
  /** Aborted by CTAPHID_CANCEL on the transaction's channel, by an INIT on it, or when its port closes. */
  signal: AbortSignal;
  /** What KEEPALIVE reports while the command runs (CTAP 2.1 §11.2.9.2.1). */
  setStatus(status: KeepaliveStatus): void;
}

export type CborHandler = (request: Uint8Array, tx: CborTransaction) => Promise<Uint8Array>;

export interface CtaphidDeviceOptions {
  handleCbor: CborHandler;
  onWink?: () => void;
  /** How long a half-received message may wait for its next continuation packet. */
  messageTimeoutMs?: number;
  keepaliveIntervalMs?: number;
}

interface Assembly {
  cid: number;
  port: Port;
  cmd: number;
  buffer: Uint8Array;
  received: number;
  nextSeq: number;
  timer: NodeJS.Timeout;
}

interface Busy {
  cid: number;
  port: Port;
  abort: AbortController;
  status: KeepaliveStatus;
  keepalive: NodeJS.Timeout;
}

export class CtaphidDevice {
  private readonly channels = new Map<number, Port>();
  private nextCid = 1;
  private assembly: Assembly | undefined;
  private busy: Busy | undefined;
  private readonly messageTimeoutMs: number;
  private readonly keepaliveIntervalMs: number;

  constructor(private readonly options: CtaphidDeviceOptions) {
    this.messageTimeoutMs = options.messageTimeoutMs ?? 1_000;
    this.keepaliveIntervalMs = options.keepaliveIntervalMs ?? 100;
  }

  receive(report: Uint8Array, port: Port): void {
    if (report.length !== REPORT_SIZE) return;
    const packet = parsePacket(report);
    if (packet.kind === 'init') this.receiveInit(packet, port);
    else this.receiveCont(packet, port);
  }

  /** Forget a closed connection: its channels, its half-received message, its running command. */
  detach(port: Port): void {
    for (const [cid, owner] of this.channels) if (owner === port) this.channels.delete(cid);
    if (this.assembly?.port === port) this.dropAssembly();
    if (this.busy?.port === port) this.endBusy(true);
  }

  close(): void {
    this.dropAssembly();
    if (this.busy) this.endBusy(true);
    this.channels.clear();
  }

  private receiveInit(packet: Extract<Packet, { kind: 'init' }>, port: Port): void {
    const { cid, cmd, bcnt } = packet;
    if (cmd === Cmd.INIT) {
      this.init(packet, port);
      return;
    }
    if (cid === BROADCAST_CID || !this.channels.has(cid)) {
      this.sendError(port, cid, HidError.INVALID_CHANNEL);
      return;
    }
    if (cmd === Cmd.CANCEL) {
      // §11.2.9.1.5: no response to CANCEL itself; the cancelled command answers KEEPALIVE_CANCEL.
      if (this.busy?.cid === cid) this.busy.abort.abort();
      return;
    }
    if (this.assembly) {
      if (this.assembly.cid === cid) {
        // A new init packet while the last message of this channel is incomplete.
        this.dropAssembly();
        this.sendError(port, cid, HidError.INVALID_SEQ);
      } else {
        this.sendError(port, cid, HidError.CHANNEL_BUSY);
      }
      return;
    }
    if (this.busy) {
      this.sendError(port, cid, HidError.CHANNEL_BUSY);
      return;
    }
    if (bcnt > MAX_MESSAGE_SIZE) {
      this.sendError(port, cid, HidError.INVALID_LEN);
      return;
    }
    const buffer = new Uint8Array(bcnt);
    const first = packet.data.subarray(0, Math.min(bcnt, INIT_DATA_SIZE));
    buffer.set(first);
    if (first.length === bcnt) {
      this.dispatch(cid, port, cmd, buffer);
      return;
    }
    this.assembly = {
      cid,
      port,
      cmd,
      buffer,
      received: first.length,
      nextSeq: 0,
      timer: setTimeout(() => {
        this.dropAssembly();
        this.sendError(port, cid, HidError.MSG_TIMEOUT);
      }, this.messageTimeoutMs),
    };
  }

  private receiveCont(packet: Extract<Packet, { kind: 'cont' }>, port: Port): void {
    const assembly = this.assembly;
    // §11.2.4: a continuation packet that belongs to no message is ignored.
    if (!assembly) return;
    if (assembly.cid !== packet.cid) {
      if (this.channels.has(packet.cid)) this.sendError(port, packet.cid, HidError.CHANNEL_BUSY);
      return;
    }
    if (packet.seq !== assembly.nextSeq) {
      this.dropAssembly();
      this.sendError(port, packet.cid, HidError.INVALID_SEQ);
      return;
    }
    const chunk = packet.data.subarray(
      0,
      Math.min(CONT_DATA_SIZE, assembly.buffer.length - assembly.received),
    );
    assembly.buffer.set(chunk, assembly.received);
    assembly.received += chunk.length;
    assembly.nextSeq++;
    if (assembly.received === assembly.buffer.length) {
      this.dropAssembly();
      this.dispatch(assembly.cid, assembly.port, assembly.cmd, assembly.buffer);
    } else {
      assembly.timer.refresh();
    }
  }

  private init(packet: Extract<Packet, { kind: 'init' }>, port: Port): void {
    const { cid } = packet;
    if (packet.bcnt !== 8) {
      this.sendError(port, cid, HidError.INVALID_LEN);
      return;
    }
    let assigned: number;
    if (cid === BROADCAST_CID) {
      assigned = this.allocateCid();
      this.channels.set(assigned, port);
    } else if (this.channels.has(cid)) {
      // §11.2.9.1.3: INIT on an allocated channel resynchronises it: whatever ran there is abandoned.
      if (this.assembly?.cid === cid) this.dropAssembly();
      if (this.busy?.cid === cid) this.endBusy(true);
      assigned = cid;
    } else {
      this.sendError(port, cid, HidError.INVALID_CHANNEL);
      return;
    }
    const response = new Uint8Array(17);
    response.set(packet.data.subarray(0, 8), 0);
    new DataView(response.buffer).setUint32(8, assigned);
    response[12] = CTAPHID_PROTOCOL_VERSION;
    response.set(DEVICE_VERSION, 13);
    response[16] = CAPABILITY_WINK | CAPABILITY_CBOR | CAPABILITY_NMSG;
    this.send(port, cid, Cmd.INIT, response);
  }

  private allocateCid(): number {
    for (;;) {
      const cid = this.nextCid;
      this.nextCid = this.nextCid >= 0xfffffffe ? 1 : this.nextCid + 1;
      if (!this.channels.has(cid)) return cid;
    }
  }

  private dispatch(cid: number, port: Port, cmd: number, payload: Uint8Array): void {
    switch (cmd) {
      case Cmd.PING:
        this.send(port, cid, Cmd.PING, payload);
        return;
      case Cmd.WINK:
        if (payload.length !== 0) {
          this.sendError(port, cid, HidError.INVALID_LEN);
          return;
        }
        this.options.onWink?.();
        this.send(port, cid, Cmd.WINK, payload);
        return;
      case Cmd.CBOR:
        if (payload.length === 0) {
          this.sendError(port, cid, HidError.INVALID_LEN);
          return;
        }
        this.runCbor(cid, port, payload);
        return;
      default:
        this.sendError(port, cid, HidError.INVALID_CMD);
    }
  }

  private runCbor(cid: number, port: Port, request: Uint8Array): void {
    const abort = new AbortController();
    const busy: Busy = {
      cid,
      port,
      abort,
      status: KeepaliveStatus.PROCESSING,
      keepalive: setInterval(() => {
        this.send(port, cid, Cmd.KEEPALIVE, Uint8Array.of(busy.status));
      }, this.keepaliveIntervalMs),
    };
    this.busy = busy;
    const tx: CborTransaction = {
      signal: abort.signal,
      setStatus: (status) => {
        busy.status = status;
      },
    };
    this.options
      .handleCbor(request, tx)
      .catch(() => Uint8Array.of(0x7f)) // CTAP1_ERR_OTHER: the handler maps every known failure itself.
      .then((response) => {
        if (this.busy !== busy) return; // abandoned by INIT or a closed port
        this.endBusy(false);
        this.send(port, cid, Cmd.CBOR, response);
      });
  }

  private endBusy(abort: boolean): void {
    const busy = this.busy;
    if (!busy) return;
    clearInterval(busy.keepalive);
    if (abort) busy.abort.abort();
    this.busy = undefined;
  }

  private dropAssembly(): void {
    if (!this.assembly) return;
    clearTimeout(this.assembly.timer);
    this.assembly = undefined;
  }

  private sendError(port: Port, cid: number, code: number): void {
    this.send(port, cid, Cmd.ERROR, Uint8Array.of(code));
  }

  private send(port: Port, cid: number, cmd: number, payload: Uint8Array): void {
    for (const report of fragment(cid, cmd, payload)) port.send(report);
  }
}
