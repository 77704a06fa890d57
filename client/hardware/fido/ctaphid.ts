// CTAPHID framing (CTAP 2.1 §11.2), pure: bytes in, bytes or typed errors out. The same assembler
// serves the platform (reading responses) and an authenticator (reading requests); the I/O lives in
// device.ts and in the lab security key.

/** CTAPHID command bytes (CTAP 2.1 §11.2.9; values as in libfido2's fido/param.h). */
export const CTAPHID_CMD = {
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

/** CTAPHID_ERROR payload codes (CTAP 2.1 §11.2.9.1.6). */
export const CTAPHID_ERR = {
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

/** Capability flags of the INIT response (CTAP 2.1 §11.2.9.1.3). */
export const CTAPHID_CAPABILITY = { WINK: 0x01, CBOR: 0x04, NMSG: 0x08 } as const;

/** KEEPALIVE status bytes (CTAP 2.1 §11.2.9.1.7). */
export const KEEPALIVE_STATUS = { PROCESSING: 0x01, UP_NEEDED: 0x02 } as const;

export const BROADCAST_CID = 0xffffffff;
export const REPORT_SIZE = 64;
export const INIT_HEADER_SIZE = 7;
export const CONT_HEADER_SIZE = 5;
export const INIT_DATA_SIZE = REPORT_SIZE - INIT_HEADER_SIZE; // 57
export const CONT_DATA_SIZE = REPORT_SIZE - CONT_HEADER_SIZE; // 59
export const MAX_SEQ = 0x7f;
/** One init packet and 128 continuation packets (SEQ 0..0x7F): 57 + 128 × 59. */
export const MAX_MESSAGE_SIZE = INIT_DATA_SIZE + (MAX_SEQ + 1) * CONT_DATA_SIZE; // 7609
export const INIT_NONCE_SIZE = 8;
export const INIT_RESPONSE_SIZE = 17;
/** CTAPHID protocol version carried in the INIT response. */
export const CTAPHID_PROTOCOL_VERSION = 2;

const TYPE_INIT = 0x80;

export type CtaphidErrorCode =
  // Framing errors found locally, on either side.
  | 'INVALID_PACKET_SIZE'
  | 'INVALID_CHANNEL'
  | 'INVALID_SEQ'
  | 'INVALID_LENGTH'
  | 'UNEXPECTED_CONTINUATION'
  | 'CHANNEL_BUSY'
  | 'INVALID_INIT_RESPONSE'
  | 'INIT_NONCE_MISMATCH'
  | 'INVALID_KEEPALIVE'
  | 'UNEXPECTED_RESPONSE'
  // Errors a device reported with CTAPHID_ERROR.
  | 'INVALID_COMMAND'
  | 'INVALID_PARAMETER'
  | 'MESSAGE_TIMEOUT'
  | 'LOCK_REQUIRED'
  | 'DEVICE_ERROR'
  // I/O outcomes (device.ts, transports).
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'TRANSPORT_CLOSED';

export class CtaphidError extends Error {
  override readonly name = 'CtaphidError';
  constructor(
    readonly code: CtaphidErrorCode,
    message: string,
    readonly details: {
      /** 'device' when the authenticator sent CTAPHID_ERROR; 'local' when we found it ourselves. */
      source?: 'local' | 'device';
      /** The raw CTAPHID_ERROR code, for device errors. */
      deviceCode?: number;
      /** The channel of the packet that caused the error. */
      cid?: number;
    } = {},
  ) {
    super(message);
  }
}

export interface CtaphidMessage {
  cid: number;
  cmd: number;
  payload: Uint8Array;
}

export type CtaphidPacket =
  | { type: 'init'; cid: number; cmd: number; bcnt: number; data: Uint8Array }
  | { type: 'cont'; cid: number; seq: number; data: Uint8Array };

function hex32(cid: number): string {
  return `0x${cid.toString(16).padStart(8, '0')}`;
}

function checkCid(cid: number): void {
  if (!Number.isInteger(cid) || cid < 0 || cid > 0xffffffff) {
    throw new RangeError(`CTAPHID channel id out of range: ${cid}`);
  }
}

/** Splits one message into 64-byte reports (no HID report-ID byte), zero padded. */
export function fragmentMessage(cid: number, cmd: number, payload: Uint8Array): Uint8Array[] {
  checkCid(cid);
  if (!Number.isInteger(cmd) || cmd < 0 || cmd > 0x7f)
    throw new RangeError(`CTAPHID command out of range: ${cmd}`);
  if (payload.length > MAX_MESSAGE_SIZE) {
    throw new CtaphidError(
      'INVALID_LENGTH',
      `A CTAPHID message holds at most ${MAX_MESSAGE_SIZE} bytes; this one has ${payload.length}.`,
      { source: 'local', cid },
    );
  }
  const reports: Uint8Array[] = [];
  const first = new Uint8Array(REPORT_SIZE);
  const view = new DataView(first.buffer);
  view.setUint32(0, cid);
  first[4] = TYPE_INIT | cmd;
  view.setUint16(5, payload.length);
  first.set(payload.subarray(0, INIT_DATA_SIZE), INIT_HEADER_SIZE);
  reports.push(first);
  let offset = INIT_DATA_SIZE;
  for (let seq = 0; offset < payload.length; seq++) {
    const report = new Uint8Array(REPORT_SIZE);
    new DataView(report.buffer).setUint32(0, cid);
    report[4] = seq;
    report.set(payload.subarray(offset, offset + CONT_DATA_SIZE), CONT_HEADER_SIZE);
    reports.push(report);
    offset += CONT_DATA_SIZE;
  }
  return reports;
}

/** Reads the header of one report. Throws INVALID_PACKET_SIZE unless it is exactly 64 bytes. */
export function parsePacket(report: Uint8Array): CtaphidPacket {
  if (report.length !== REPORT_SIZE) {
    throw new CtaphidError(
      'INVALID_PACKET_SIZE',
      `A CTAPHID report is ${REPORT_SIZE} bytes; received ${report.length}.`,
      { source: 'local' },
    );
  }
  const view = new DataView(report.buffer, report.byteOffset, report.byteLength);
  const cid = view.getUint32(0);
  const byte4 = view.getUint8(4);
  if (byte4 & TYPE_INIT) {
    return {
      type: 'init',
      cid,
      cmd: byte4 & 0x7f,
      bcnt: view.getUint16(5),
      data: report.subarray(INIT_HEADER_SIZE),
    };
  }
  return { type: 'cont', cid, seq: byte4, data: report.subarray(CONT_HEADER_SIZE) };
}

export interface MessageAssemblerOptions {
  /**
   * The platform's side: the only channel it listens on. A report on another channel throws
   * INVALID_CHANNEL and leaves the assembler unchanged, so a caller sharing a device with other
   * programs can skip it (libfido2 skips such reports too).
   * Leave it unset on the authenticator side: the assembler follows the channel of the first
   * initialization packet.
   */
  cid?: number;
  /** Lower limit than 7609 bytes, e.g. the maxMsgSize of the peer. */
  maxMessageSize?: number;
}

interface Pending {
  cid: number;
  cmd: number;
  buffer: Uint8Array;
  filled: number;
  nextSeq: number;
}

/**
 * Reassembles CTAPHID messages from 64-byte reports, one report at a time (CTAP 2.1 §11.2, framing).
 * `push` returns a complete message, `undefined` while more continuation packets are expected, or
 * throws a CtaphidError. After INVALID_SEQ / INVALID_LENGTH the partial message is dropped; after
 * INVALID_CHANNEL / CHANNEL_BUSY / INVALID_PACKET_SIZE the assembler state is unchanged.
 */
export class MessageAssembler {
  readonly #expectedCid: number | undefined;
  readonly #maxMessageSize: number;
  #pending: Pending | undefined;

  constructor(options: MessageAssemblerOptions = {}) {
    if (options.cid !== undefined) checkCid(options.cid);
    this.#expectedCid = options.cid;
    this.#maxMessageSize = Math.min(options.maxMessageSize ?? MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE);
  }

  /** True while a message is partially received. */
  get inProgress(): boolean {
    return this.#pending !== undefined;
  }

  /** The channel of the partial message, if any (an authenticator answers CHANNEL_BUSY to others). */
  get activeCid(): number | undefined {
    return this.#pending?.cid;
  }

  reset(): void {
    this.#pending = undefined;
  }

  push(report: Uint8Array): CtaphidMessage | undefined {
    const packet = parsePacket(report);
    if (this.#expectedCid !== undefined && packet.cid !== this.#expectedCid) {
      throw new CtaphidError(
        'INVALID_CHANNEL',
        `Received a CTAPHID packet for channel ${hex32(packet.cid)} while listening on ${hex32(this.#expectedCid)}.`,
        { source: 'local', cid: packet.cid },
      );
    }
    // CTAP 2.1 §11.2 (channels): CID 0 is reserved.
    if (packet.cid === 0) {
      throw new CtaphidError('INVALID_CHANNEL', 'CTAPHID channel 0 is reserved.', {
        source: 'local',
        cid: 0,
      });
    }
    return packet.type === 'init' ? this.#onInit(packet) : this.#onContinuation(packet);
  }

  #onInit(packet: Extract<CtaphidPacket, { type: 'init' }>): CtaphidMessage | undefined {
    const pending = this.#pending;
    if (pending && pending.cid !== packet.cid) {
      // CTAP 2.1 §11.2 (concurrency): one transaction at a time; another channel is told it is busy.
      throw new CtaphidError(
        'CHANNEL_BUSY',
        `Channel ${hex32(packet.cid)} started a message while ${hex32(pending.cid)} is still sending one.`,
        { source: 'local', cid: packet.cid },
      );
    }
    if (pending && packet.cmd !== CTAPHID_CMD.INIT) {
      // A new message on the same channel before the previous one completed; INIT is the exception,
      // since it resynchronises the channel (CTAP 2.1 §11.2.9.1.3).
      this.#pending = undefined;
      throw new CtaphidError(
        'INVALID_SEQ',
        `Channel ${hex32(packet.cid)} started a new message before finishing the previous one.`,
        { source: 'local', cid: packet.cid },
      );
    }
    this.#pending = undefined;
    if (packet.bcnt > this.#maxMessageSize) {
      throw new CtaphidError(
        'INVALID_LENGTH',
        `A CTAPHID message announced ${packet.bcnt} bytes; at most ${this.#maxMessageSize} are allowed.`,
        { source: 'local', cid: packet.cid },
      );
    }
    const firstChunk = packet.data.subarray(0, Math.min(packet.bcnt, INIT_DATA_SIZE));
    if (packet.bcnt <= INIT_DATA_SIZE) {
      return { cid: packet.cid, cmd: packet.cmd, payload: firstChunk.slice() };
    }
    const buffer = new Uint8Array(packet.bcnt);
    buffer.set(firstChunk);
    this.#pending = { cid: packet.cid, cmd: packet.cmd, buffer, filled: firstChunk.length, nextSeq: 0 };
    return undefined;
  }

  #onContinuation(packet: Extract<CtaphidPacket, { type: 'cont' }>): CtaphidMessage | undefined {
    const pending = this.#pending;
    if (!pending) {
      throw new CtaphidError(
        'UNEXPECTED_CONTINUATION',
        `Received a continuation packet (SEQ ${packet.seq}) with no message in progress.`,
        { source: 'local', cid: packet.cid },
      );
    }
    if (packet.cid !== pending.cid) {
      // CTAP 2.1 §11.2 (concurrency): another channel's packets do not disturb the transaction in progress.
      throw new CtaphidError(
        'INVALID_CHANNEL',
        `Received a continuation packet for channel ${hex32(packet.cid)} while ${hex32(pending.cid)} is sending.`,
        { source: 'local', cid: packet.cid },
      );
    }
    if (packet.seq !== pending.nextSeq) {
      this.#pending = undefined;
      throw new CtaphidError(
        'INVALID_SEQ',
        `Expected continuation packet SEQ ${pending.nextSeq}, received ${packet.seq}.`,
        { source: 'local', cid: packet.cid },
      );
    }
    const take = Math.min(CONT_DATA_SIZE, pending.buffer.length - pending.filled);
    pending.buffer.set(packet.data.subarray(0, take), pending.filled);
    pending.filled += take;
    pending.nextSeq += 1;
    if (pending.filled < pending.buffer.length) return undefined;
    this.#pending = undefined;
    return { cid: pending.cid, cmd: pending.cmd, payload: pending.buffer };
  }
}

export interface InitResponse {
  cid: number;
  protocolVersion: number;
  deviceVersion: { major: number; minor: number; build: number };
  capabilities: number;
  wink: boolean;
  cbor: boolean;
  /** NMSG: the device does not implement CTAPHID_MSG (CTAP1/U2F). */
  nmsg: boolean;
}

/** Parses the 17-byte CTAPHID_INIT response and checks the nonce echo (CTAP 2.1 §11.2.9.1.3). */
export function parseInitResponse(nonce: Uint8Array, payload: Uint8Array): InitResponse {
  if (nonce.length !== INIT_NONCE_SIZE) throw new RangeError(`The INIT nonce is ${INIT_NONCE_SIZE} bytes.`);
  // Later protocol versions may append fields; only a short answer is malformed.
  if (payload.length < INIT_RESPONSE_SIZE) {
    throw new CtaphidError(
      'INVALID_INIT_RESPONSE',
      `The security key's INIT answer has ${payload.length} bytes; ${INIT_RESPONSE_SIZE} are required.`,
      { source: 'local' },
    );
  }
  for (let i = 0; i < INIT_NONCE_SIZE; i++) {
    if (payload[i] !== nonce[i]) {
      throw new CtaphidError(
        'INIT_NONCE_MISMATCH',
        'The security key answered INIT with another nonce; the answer was meant for another program. Try again.',
        { source: 'local' },
      );
    }
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const cid = view.getUint32(8);
  if (cid === 0 || cid === BROADCAST_CID) {
    throw new CtaphidError(
      'INVALID_INIT_RESPONSE',
      `The security key assigned an invalid channel ${hex32(cid)}.`,
      {
        source: 'local',
        cid,
      },
    );
  }
  const capabilities = view.getUint8(16);
  return {
    cid,
    protocolVersion: view.getUint8(12),
    deviceVersion: { major: view.getUint8(13), minor: view.getUint8(14), build: view.getUint8(15) },
    capabilities,
    wink: (capabilities & CTAPHID_CAPABILITY.WINK) !== 0,
    cbor: (capabilities & CTAPHID_CAPABILITY.CBOR) !== 0,
    nmsg: (capabilities & CTAPHID_CAPABILITY.NMSG) !== 0,
  };
}

/** Authenticator side: the INIT response payload. */
export function encodeInitResponse(init: {
  nonce: Uint8Array;
  cid: number;
  protocolVersion?: number;
  deviceVersion?: { major: number; minor: number; build: number };
  capabilities: number;
}): Uint8Array {
  if (init.nonce.length !== INIT_NONCE_SIZE)
    throw new RangeError(`The INIT nonce is ${INIT_NONCE_SIZE} bytes.`);
  checkCid(init.cid);
  const out = new Uint8Array(INIT_RESPONSE_SIZE);
  const view = new DataView(out.buffer);
  out.set(init.nonce, 0);
  view.setUint32(8, init.cid);
  const version = init.deviceVersion ?? { major: 0, minor: 0, build: 0 };
  out[12] = init.protocolVersion ?? CTAPHID_PROTOCOL_VERSION;
  out[13] = version.major;
  out[14] = version.minor;
  out[15] = version.build;
  out[16] = init.capabilities;
  return out;
}

export type KeepaliveStatus = 'processing' | 'user-presence-needed' | 'unknown';

/** CTAP 2.1 §11.2.9.1.7: 1 processing, 2 user presence needed; other values are reserved. */
export function parseKeepalive(payload: Uint8Array): KeepaliveStatus {
  const status = payload[0];
  if (status === undefined) {
    throw new CtaphidError('INVALID_KEEPALIVE', 'The security key sent an empty KEEPALIVE.', {
      source: 'local',
    });
  }
  if (status === KEEPALIVE_STATUS.PROCESSING) return 'processing';
  if (status === KEEPALIVE_STATUS.UP_NEEDED) return 'user-presence-needed';
  return 'unknown';
}

export function encodeKeepalive(status: 'processing' | 'user-presence-needed'): Uint8Array {
  return Uint8Array.of(status === 'processing' ? KEEPALIVE_STATUS.PROCESSING : KEEPALIVE_STATUS.UP_NEEDED);
}

const DEVICE_ERRORS: Record<number, { code: CtaphidErrorCode; message: string }> = {
  [CTAPHID_ERR.INVALID_CMD]: {
    code: 'INVALID_COMMAND',
    message: 'The security key does not support this command. It may be too old for this operation.',
  },
  [CTAPHID_ERR.INVALID_PAR]: { code: 'INVALID_PARAMETER', message: 'The security key rejected a parameter.' },
  [CTAPHID_ERR.INVALID_LEN]: {
    code: 'INVALID_LENGTH',
    message: 'The security key rejected the message length. Unplug the key, plug it back in and try again.',
  },
  [CTAPHID_ERR.INVALID_SEQ]: {
    code: 'INVALID_SEQ',
    message: 'The security key lost track of the message. Unplug the key, plug it back in and try again.',
  },
  [CTAPHID_ERR.MSG_TIMEOUT]: {
    code: 'MESSAGE_TIMEOUT',
    message: 'The security key timed out receiving the message. Try again.',
  },
  [CTAPHID_ERR.CHANNEL_BUSY]: {
    code: 'CHANNEL_BUSY',
    message: 'The security key is busy with another program. Finish or close that program, then try again.',
  },
  [CTAPHID_ERR.LOCK_REQUIRED]: {
    code: 'LOCK_REQUIRED',
    message: 'The security key is locked by another program. Try again in a moment.',
  },
  [CTAPHID_ERR.INVALID_CHANNEL]: {
    code: 'INVALID_CHANNEL',
    message: 'The security key no longer knows this channel. Try again.',
  },
};

/** Maps the payload of a CTAPHID_ERROR message to a typed error. */
export function deviceError(payload: Uint8Array): CtaphidError {
  const deviceCode = payload[0] ?? CTAPHID_ERR.OTHER;
  const known = DEVICE_ERRORS[deviceCode];
  if (known) return new CtaphidError(known.code, known.message, { source: 'device', deviceCode });
  return new CtaphidError(
    'DEVICE_ERROR',
    `The security key reported error 0x${deviceCode.toString(16).padStart(2, '0')}. Unplug it, plug it back in and try again.`,
    { source: 'device', deviceCode },
  );
}
