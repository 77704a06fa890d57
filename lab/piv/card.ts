// The virtual PIV card as pure code on bytes: a command APDU in, a response APDU out. It owns what ISO
// 7816-4 puts around the applet (command chaining with CLA bit 0x10, long answers handed out by GET
// RESPONSE after 61xx, the applet's selection) and dispatches each instruction to the module that does it.
// Power, reset and touch come from outside through CardEnvironment; so does persistence.
import type { CardResponse, CommandApdu } from './apdu';
import { ApduFormatError, encodeResponseApdu, ok, parseCommandApdu, status, SW } from './apdu';
import type { CardContext, TouchSource } from './context';
import { newSession } from './context';
import { getData, putData } from './data-objects';
import { authenticateManagementKey, setManagementKey } from './management-key';
import { changeReferenceData, resetRetryCounter, verify } from './pin';
import { MANAGEMENT_KEY_SLOT } from './policy';
import { attest, generateKeyPair, useSlotKey } from './slot-keys';
import type { PivCardState } from './state';
import { parseSingleTlv, TlvError } from './tlv';
import { getMetadata, getSerial, getVersion, resetApplication } from './yubikey-extensions';

/**
 * A YubiKey 5 NFC's ATR over USB: T=1, historical bytes "…YubiKey@". OpenSC recognises a YubiKey by it;
 * yubico-piv-tool does not look at it.
 */
export const ATR = Uint8Array.from(Buffer.from('3bfd1300008131fe158073c021c057597562694b657940', 'hex'));

/** The PIV application identifier with version (SP 800-73-4 Part 1 §2.2); SELECT may right-truncate it. */
export const PIV_AID = Uint8Array.from(Buffer.from('a000000308000010000100', 'hex'));
const MIN_AID_PREFIX = 5;

/** SELECT's answer, the application property template of SP 800-73-4 Part 2 §3.1.1, as a YubiKey sends it. */
const APPLICATION_PROPERTY_TEMPLATE = Uint8Array.from(
  Buffer.from('61114f0600001000010079074f05a000000308', 'hex'),
);

/** Enough for a 3 KB object plus its tags, chained; more is refused rather than buffered. */
const MAX_COMMAND_DATA = 4096;
const SHORT_RESPONSE_MAX = 256;
const EXTENDED_RESPONSE_MAX = 65536;

const INS = {
  SELECT: 0xa4,
  GET_RESPONSE: 0xc0,
  VERIFY: 0x20,
  CHANGE_REFERENCE_DATA: 0x24,
  RESET_RETRY_COUNTER: 0x2c,
  GENERAL_AUTHENTICATE: 0x87,
  GENERATE_ASYMMETRIC_KEY_PAIR: 0x47,
  GET_DATA: 0xcb,
  PUT_DATA: 0xdb,
  GET_METADATA: 0xf7,
  GET_SERIAL: 0xf8,
  ATTEST: 0xf9,
  RESET: 0xfb,
  GET_VERSION: 0xfd,
  SET_MANAGEMENT_KEY: 0xff,
} as const;

export interface CardEnvironment {
  now(): number;
  touch: TouchSource;
  /** Called after every change of the persistent state. */
  save(state: PivCardState): void;
}

type Handler = (ctx: CardContext, cmd: CommandApdu) => CardResponse | Promise<CardResponse>;

const HANDLERS: Record<number, Handler> = {
  [INS.VERIFY]: verify,
  [INS.CHANGE_REFERENCE_DATA]: changeReferenceData,
  [INS.RESET_RETRY_COUNTER]: resetRetryCounter,
  [INS.GENERAL_AUTHENTICATE]: generalAuthenticate,
  [INS.GENERATE_ASYMMETRIC_KEY_PAIR]: generateKeyPair,
  [INS.GET_DATA]: getData,
  [INS.PUT_DATA]: putData,
  [INS.GET_METADATA]: getMetadata,
  [INS.GET_SERIAL]: getSerial,
  [INS.ATTEST]: attest,
  [INS.RESET]: resetApplication,
  [INS.GET_VERSION]: getVersion,
  [INS.SET_MANAGEMENT_KEY]: setManagementKey,
};

function generalAuthenticate(ctx: CardContext, cmd: CommandApdu): CardResponse | Promise<CardResponse> {
  let template: Uint8Array;
  try {
    template = parseSingleTlv(cmd.data, 0x7c);
  } catch (error) {
    if (error instanceof TlvError) return status(SW.INCORRECT_DATA);
    throw error;
  }
  if (cmd.p2 === MANAGEMENT_KEY_SLOT) return authenticateManagementKey(ctx, cmd, template);
  return useSlotKey(ctx, cmd, template);
}

export class PivCard {
  readonly atr = ATR;
  private readonly ctx: CardContext;
  private selected = false;
  private chain: { ins: number; p1: number; p2: number; parts: Uint8Array[]; length: number } | undefined;
  private pendingResponse: { data: Uint8Array; sw: number } | undefined;

  constructor(state: PivCardState, env: CardEnvironment) {
    this.ctx = {
      state,
      session: newSession(),
      now: () => env.now(),
      touch: env.touch,
      touchCache: { lastTouchAt: undefined },
      save: () => env.save(state),
    };
  }

  get state(): PivCardState {
    return this.ctx.state;
  }

  /** Power-on, warm reset and power-off all end the selection and its security status. */
  reset(): void {
    this.selected = false;
    this.ctx.session = newSession();
    this.chain = undefined;
    this.pendingResponse = undefined;
  }

  powerOff(): void {
    this.reset();
    this.ctx.touchCache.lastTouchAt = undefined;
  }

  /** One command APDU to its response APDU. Never throws for anything a host can send. */
  async transmit(bytes: Uint8Array): Promise<Uint8Array> {
    const response = await this.process(bytes);
    return encodeResponseApdu(response.data, response.sw);
  }

  private async process(bytes: Uint8Array): Promise<CardResponse> {
    let cmd: CommandApdu;
    try {
      cmd = parseCommandApdu(bytes);
    } catch (error) {
      if (error instanceof ApduFormatError) return status(SW.WRONG_LENGTH);
      throw error;
    }
    const responseMax = cmd.extended ? EXTENDED_RESPONSE_MAX : SHORT_RESPONSE_MAX;
    const chunk = Math.min(cmd.le ?? responseMax, responseMax);

    if (cmd.ins === INS.GET_RESPONSE && (cmd.cla & 0x10) === 0) {
      const pending = this.pendingResponse;
      this.pendingResponse = undefined;
      if (cmd.cla !== 0x00) return status(SW.CLA_NOT_SUPPORTED);
      if (!pending) return status(SW.CONDITIONS_NOT_SATISFIED);
      if (cmd.p1 !== 0x00 || cmd.p2 !== 0x00) return status(SW.INCORRECT_P1P2);
      return this.split(pending, chunk);
    }
    this.pendingResponse = undefined;

    // CLA 00, or 10 for "more of this command follows" (ISO 7816-4 §5.4.1). No secure messaging, no channels.
    if ((cmd.cla & ~0x10) !== 0) {
      this.chain = undefined;
      return status(SW.CLA_NOT_SUPPORTED);
    }
    const chained = (cmd.cla & 0x10) !== 0;
    const chain = this.chain;
    if (
      chain &&
      cmd.ins !== INS.SELECT &&
      (chain.ins !== cmd.ins || chain.p1 !== cmd.p1 || chain.p2 !== cmd.p2)
    ) {
      this.chain = undefined;
      return status(SW.LAST_COMMAND_EXPECTED);
    }
    if (chained) {
      const current = cmd.ins === INS.SELECT ? undefined : chain;
      const next = current ?? { ins: cmd.ins, p1: cmd.p1, p2: cmd.p2, parts: [], length: 0 };
      next.parts.push(Uint8Array.from(cmd.data));
      next.length += cmd.data.length;
      if (next.length > MAX_COMMAND_DATA) {
        this.chain = undefined;
        return status(SW.WRONG_LENGTH);
      }
      this.chain = next;
      return ok();
    }
    this.chain = undefined;
    if (chain && cmd.ins !== INS.SELECT) {
      const data = new Uint8Array(chain.length + cmd.data.length);
      let offset = 0;
      for (const part of [...chain.parts, cmd.data]) {
        data.set(part, offset);
        offset += part.length;
      }
      if (data.length > MAX_COMMAND_DATA) return status(SW.WRONG_LENGTH);
      cmd = { ...cmd, data };
    }

    let response: CardResponse;
    try {
      response = await this.dispatch(cmd);
    } catch {
      // A fault of this card, not of the command: answer as a card does ("no precise diagnosis").
      response = status(SW.UNKNOWN);
    }
    return this.split(response, chunk);
  }

  private async dispatch(cmd: CommandApdu): Promise<CardResponse> {
    if (cmd.ins === INS.SELECT) return this.select(cmd);
    // With no application selected there is nothing to answer the instruction.
    if (!this.selected) return status(SW.INS_NOT_SUPPORTED);
    const handler = HANDLERS[cmd.ins];
    if (!handler) return status(SW.INS_NOT_SUPPORTED);
    if (cmd.ins !== INS.GENERAL_AUTHENTICATE || cmd.p2 !== MANAGEMENT_KEY_SLOT) {
      this.ctx.session.managementExchange = undefined;
    }
    const response = await handler(this.ctx, cmd);
    if (cmd.ins === INS.RESET && response.sw === SW.OK) this.ctx.session = newSession();
    return response;
  }

  /** SELECT (INS A4, P1 04): the PIV AID or a right-truncation of it (at least its 5-byte RID+PIX start). */
  private select(cmd: CommandApdu): CardResponse {
    if (cmd.p1 !== 0x04) return status(SW.INCORRECT_P1P2);
    const aid = cmd.data;
    const matches =
      aid.length >= MIN_AID_PREFIX && aid.length <= PIV_AID.length && aid.every((b, i) => b === PIV_AID[i]);
    // A failed SELECT leaves the current selection as it was.
    if (!matches) return status(SW.FILE_NOT_FOUND);
    this.selected = true;
    this.ctx.session = newSession();
    return ok(APPLICATION_PROPERTY_TEMPLATE);
  }

  /** The first `chunk` bytes now; the rest waits for GET RESPONSE, announced by 61xx (00: 256 or more). */
  private split(response: CardResponse, chunk: number): CardResponse {
    if (response.data.length <= chunk) return response;
    const rest = response.data.subarray(chunk);
    this.pendingResponse = { data: rest, sw: response.sw };
    return status(SW.MORE_DATA | (rest.length >= 256 ? 0 : rest.length), response.data.subarray(0, chunk));
  }
}
