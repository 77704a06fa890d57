// A virtual card in the test's own process, driven on bytes, with a clock and a finger the test holds.
// The management-key and PIN helpers compute their side with node:crypto directly, not with the card's
// code, so the tests check the card against the protocol rather than against itself.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { encodeCommandApdu } from './apdu';
import { PivCard } from './card';
import type { TouchOutcome, TouchSource } from './context';
import type { NewCardOptions, PivCardState } from './state';
import { createCardState } from './state';

export const DEFAULT_KEY = Buffer.from('010203040506070801020304050607080102030405060708', 'hex');

export interface Answer {
  data: Uint8Array;
  sw: number;
}

export class ScriptedTouch implements TouchSource {
  requests = 0;
  /** What the next requests answer; 'approved' once the script runs out. */
  script: TouchOutcome[] = [];
  request(): Promise<TouchOutcome> {
    this.requests += 1;
    return Promise.resolve(this.script.shift() ?? 'approved');
  }
}

const baseStates = new Map<string, Promise<PivCardState>>();

/** A fresh card state; the expensive part (the attestation CA) is made once per option set and copied. */
export async function freshState(options: NewCardOptions = {}): Promise<PivCardState> {
  const key = JSON.stringify(options);
  let base = baseStates.get(key);
  if (!base) {
    base = createCardState({ serial: 12345678, ...options });
    baseStates.set(key, base);
  }
  return structuredClone(await base);
}

export interface Harness {
  card: PivCard;
  state: PivCardState;
  touch: ScriptedTouch;
  clock: { now: number };
  saves: () => number;
  /** Sends one APDU (bytes or hex). */
  send(apdu: Uint8Array | string): Promise<Answer>;
  /** Sends and collects 61xx continuations with GET RESPONSE. */
  sendAll(apdu: Uint8Array | string): Promise<Answer>;
  select(): Promise<void>;
  verifyPin(pin?: string): Promise<Answer>;
  authenticate(algorithm?: number, key?: Uint8Array): Promise<void>;
}

export async function harness(options: NewCardOptions = {}): Promise<Harness> {
  const state = await freshState(options);
  const touch = new ScriptedTouch();
  const clock = { now: 1_000_000 };
  let saves = 0;
  const card = new PivCard(state, { now: () => clock.now, touch, save: () => (saves += 1) });
  card.reset();
  const send = async (apdu: Uint8Array | string): Promise<Answer> => {
    const bytes = typeof apdu === 'string' ? Buffer.from(apdu.replace(/\s+/g, ''), 'hex') : apdu;
    const response = await card.transmit(new Uint8Array(bytes));
    const sw = ((response[response.length - 2] as number) << 8) | (response[response.length - 1] as number);
    return { data: response.subarray(0, response.length - 2), sw };
  };
  const h: Harness = {
    card,
    state,
    touch,
    clock,
    saves: () => saves,
    send,
    async sendAll(apdu) {
      let answer = await send(apdu);
      const parts = [answer.data];
      while ((answer.sw & 0xff00) === 0x6100) {
        answer = await send('00c0000000');
        parts.push(answer.data);
      }
      return { data: new Uint8Array(Buffer.concat(parts)), sw: answer.sw };
    },
    async select() {
      const { sw } = await send('00a4040005a000000308');
      if (sw !== 0x9000) throw new Error(`SELECT answered ${sw.toString(16)}`);
    },
    verifyPin(pin = '123456') {
      return send(encodeCommandApdu(0, 0x20, 0, 0x80, paddedPin(pin)));
    },
    async authenticate(algorithm = state.managementKey.algorithm, key = DEFAULT_KEY) {
      const block = algorithm === 0x03 ? 8 : 16;
      const first = await send(encodeCommandApdu(0, 0x87, algorithm, 0x9b, Buffer.from('7c028000', 'hex')));
      if (first.sw !== 0x9000) throw new Error(`witness request answered ${first.sw.toString(16)}`);
      const witness = decryptBlock(algorithm, key, first.data.subarray(4, 4 + block));
      const challenge = randomBytes(block);
      const body = Buffer.concat([Buffer.of(0x80, block), witness, Buffer.of(0x81, block), challenge]);
      const second = await send(
        encodeCommandApdu(0, 0x87, algorithm, 0x9b, Buffer.concat([Buffer.of(0x7c, body.length), body])),
      );
      if (second.sw !== 0x9000) throw new Error(`witness answer got ${second.sw.toString(16)}`);
      const expected = encryptBlock(algorithm, key, challenge);
      if (!Buffer.from(second.data.subarray(4)).equals(expected))
        throw new Error('the card encrypted wrongly');
    },
  };
  return h;
}

export function paddedPin(pin: string): Uint8Array {
  const bytes = Buffer.from(pin, 'utf8');
  return new Uint8Array(Buffer.concat([bytes, Buffer.alloc(Math.max(0, 8 - bytes.length), 0xff)]));
}

function cipherName(algorithm: number): string {
  return { 3: 'des-ede3', 8: 'aes-128-ecb', 10: 'aes-192-ecb', 12: 'aes-256-ecb' }[algorithm] ?? 'unknown';
}

export function encryptBlock(algorithm: number, key: Uint8Array, block: Uint8Array): Buffer {
  const cipher = createCipheriv(cipherName(algorithm), key, null).setAutoPadding(false);
  return Buffer.concat([cipher.update(block), cipher.final()]);
}

export function decryptBlock(algorithm: number, key: Uint8Array, block: Uint8Array): Buffer {
  const decipher = createDecipheriv(cipherName(algorithm), key, null).setAutoPadding(false);
  return Buffer.concat([decipher.update(block), decipher.final()]);
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** GENERATE ASYMMETRIC KEY PAIR for P-256 with optional PIN and touch policy. */
export function generateApdu(slot: number, pinPolicy?: number, touchPolicy?: number): Uint8Array {
  const fields = [0x80, 0x01, 0x11];
  if (pinPolicy !== undefined) fields.push(0xaa, 0x01, pinPolicy);
  if (touchPolicy !== undefined) fields.push(0xab, 0x01, touchPolicy);
  return encodeCommandApdu(0, 0x47, 0, slot, Uint8Array.from([0xac, fields.length, ...fields]));
}

/** GENERAL AUTHENTICATE for an ECDSA signature over `digest` with the key in `slot`. */
export function signApdu(slot: number, digest: Uint8Array): Uint8Array {
  const body = [0x82, 0x00, 0x81, digest.length, ...digest];
  return encodeCommandApdu(0, 0x87, 0x11, slot, Uint8Array.from([0x7c, body.length, ...body]));
}
