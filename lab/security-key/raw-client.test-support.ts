// For the soft key's tests only: a deliberately tiny CTAPHID + CTAP2 platform written from the spec,
// sharing no code with the soft key (nor with client/hardware/fido), so each side checks the other.
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
} from 'node:crypto';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { decode, encode } from 'cbor2';
import { sortCoreDeterministic } from 'cbor2/sorts';

export const BROADCAST = 0xffffffff;
export const CMD = {
  PING: 0x01,
  INIT: 0x06,
  WINK: 0x08,
  CBOR: 0x10,
  CANCEL: 0x11,
  KEEPALIVE: 0x3b,
  ERROR: 0x3f,
};

export interface HidMessage {
  cid: number;
  cmd: number;
  payload: Uint8Array;
}

export class RawCtaphid {
  readonly keepalives: number[] = [];
  private readonly reports: Buffer[] = [];
  private waiter: (() => void) | undefined;
  private buffered = Buffer.alloc(0);

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 64) {
        this.reports.push(this.buffered.subarray(0, 64));
        this.buffered = this.buffered.subarray(64);
      }
      this.waiter?.();
    });
  }

  static connect(path: string): Promise<RawCtaphid> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new RawCtaphid(socket)));
      socket.once('error', reject);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  writeReport(report: Uint8Array): void {
    if (report.length !== 64) throw new Error('64-byte reports only');
    this.socket.write(report);
  }

  /** Init packet then continuation packets: CID | CMD|0x80 | BCNT | 57 bytes; CID | SEQ | 59 bytes. */
  send(cid: number, cmd: number, payload: Uint8Array, bcnt = payload.length): void {
    const first = Buffer.alloc(64);
    first.writeUInt32BE(cid, 0);
    first[4] = 0x80 | cmd;
    first.writeUInt16BE(bcnt, 5);
    first.set(payload.subarray(0, 57), 7);
    this.writeReport(first);
    for (let off = 57, seq = 0; off < payload.length; off += 59, seq++) {
      const cont = Buffer.alloc(64);
      cont.writeUInt32BE(cid, 0);
      cont[4] = seq;
      cont.set(payload.subarray(off, off + 59), 5);
      this.writeReport(cont);
    }
  }

  async nextReport(timeoutMs = 2_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.reports.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no report from the key');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.reports.shift() as Buffer;
  }

  /** Reads one whole message; KEEPALIVEs are recorded (their status byte) and skipped. */
  async receive(timeoutMs = 5_000): Promise<HidMessage> {
    for (;;) {
      const first = await this.nextReport(timeoutMs);
      const cid = first.readUInt32BE(0);
      if (!(first[4]! & 0x80)) throw new Error('expected an init packet');
      const cmd = first[4]! & 0x7f;
      const bcnt = first.readUInt16BE(5);
      const payload = Buffer.alloc(bcnt);
      first.copy(payload, 0, 7, 7 + Math.min(bcnt, 57));
      for (let got = Math.min(bcnt, 57), seq = 0; got < bcnt; seq++) {
        const cont = await this.nextReport(timeoutMs);
        if (cont.readUInt32BE(0) !== cid || cont[4] !== seq) throw new Error('bad continuation packet');
        const n = Math.min(59, bcnt - got);
        cont.copy(payload, got, 5, 5 + n);
        got += n;
      }
      if (cmd === CMD.KEEPALIVE) {
        this.keepalives.push(payload[0]!);
        continue;
      }
      return { cid, cmd, payload: new Uint8Array(payload) };
    }
  }

  async init(): Promise<number> {
    const nonce = randomBytes(8);
    this.send(BROADCAST, CMD.INIT, nonce);
    const m = await this.receive();
    if (m.cid !== BROADCAST || m.cmd !== CMD.INIT || m.payload.length !== 17)
      throw new Error('bad INIT response');
    if (!Buffer.from(m.payload.subarray(0, 8)).equals(nonce)) throw new Error('nonce not echoed');
    return Buffer.from(m.payload).readUInt32BE(8);
  }

  /** Sends a CTAP2 command; returns the status byte and the decoded response map (if any). */
  async cbor(cid: number, command: number, params?: Map<unknown, unknown>): Promise<CtapResponse> {
    this.sendCbor(cid, command, params);
    return this.receiveCbor(cid);
  }

  sendCbor(cid: number, command: number, params?: Map<unknown, unknown>): void {
    const body = params ? encode(plain(params), { sortKeys: sortCoreDeterministic }) : new Uint8Array();
    this.send(cid, CMD.CBOR, Uint8Array.of(command, ...body));
  }

  async receiveCbor(cid: number): Promise<CtapResponse> {
    const m = await this.receive();
    if (m.cid !== cid) throw new Error(`response on channel ${m.cid}, expected ${cid}`);
    if (m.cmd !== CMD.CBOR) throw new Error(`expected a CBOR response, got command 0x${m.cmd.toString(16)}`);
    const status = m.payload[0]!;
    const body =
      m.payload.length > 1
        ? (decode(m.payload.subarray(1), { preferMap: true }) as Map<unknown, unknown>)
        : undefined;
    return { status, body };
  }
}

/** cbor2 would encode a Node Buffer through its toJSON; CTAP wants byte strings. */
export function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [plain(k), plain(v)]));
  return value;
}

export interface CtapResponse {
  status: number;
  body: Map<unknown, unknown> | undefined;
}

/** Platform side of PIN/UV auth protocol 2 (CTAP 2.1 §6.5.7), written independently of the key's. */
export class PlatformPin {
  private constructor(
    readonly platformKey: Map<number, unknown>,
    private readonly secret: Buffer,
  ) {}

  static async agree(client: RawCtaphid, cid: number): Promise<PlatformPin> {
    const r = await client.cbor(
      cid,
      0x06,
      new Map<number, unknown>([
        [1, 2],
        [2, 2],
      ]),
    );
    if (r.status !== 0) throw new Error(`getKeyAgreement failed: 0x${r.status.toString(16)}`);
    const cose = r.body?.get(1) as Map<number, Uint8Array>;
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const z = ecdh.computeSecret(Buffer.concat([Buffer.of(4), cose.get(-2)!, cose.get(-3)!]));
    const salt = Buffer.alloc(32);
    const secret = Buffer.concat([
      Buffer.from(hkdfSync('sha256', z, salt, 'CTAP2 HMAC key', 32)),
      Buffer.from(hkdfSync('sha256', z, salt, 'CTAP2 AES key', 32)),
    ]);
    const pub = ecdh.getPublicKey();
    const platformKey = new Map<number, unknown>([
      [1, 2],
      [3, -25],
      [-1, 1],
      [-2, pub.subarray(1, 33)],
      [-3, pub.subarray(33, 65)],
    ]);
    return new PlatformPin(platformKey, secret);
  }

  encrypt(plain: Uint8Array): Buffer {
    const iv = randomBytes(16);
    const c = createCipheriv('aes-256-cbc', this.secret.subarray(32), iv).setAutoPadding(false);
    return Buffer.concat([iv, c.update(plain), c.final()]);
  }

  decrypt(data: Uint8Array): Buffer {
    const d = createDecipheriv('aes-256-cbc', this.secret.subarray(32), data.subarray(0, 16)).setAutoPadding(
      false,
    );
    return Buffer.concat([d.update(data.subarray(16)), d.final()]);
  }

  hmac(message: Uint8Array): Buffer {
    return createHmac('sha256', this.secret.subarray(0, 32)).update(message).digest();
  }

  pinHashEnc(pin: string): Buffer {
    return this.encrypt(createHash('sha256').update(pin).digest().subarray(0, 16));
  }
}

export function tokenParam(token: Uint8Array, clientDataHash: Uint8Array): Buffer {
  return createHmac('sha256', token).update(clientDataHash).digest();
}

/** setPIN (0x03) then getPinUvAuthTokenUsingPinWithPermissions (0x09). */
export async function getPinToken(
  client: RawCtaphid,
  cid: number,
  pin: string,
  permissions: number,
  rpId?: string,
): Promise<{ status: number; token?: Buffer }> {
  const pp = await PlatformPin.agree(client, cid);
  const params = new Map<number, unknown>([
    [1, 2],
    [2, 9],
    [3, pp.platformKey],
    [6, pp.pinHashEnc(pin)],
    [9, permissions],
  ]);
  if (rpId !== undefined) params.set(0x0a, rpId);
  const r = await client.cbor(cid, 0x06, params);
  if (r.status !== 0) return { status: r.status };
  return { status: 0, token: pp.decrypt(r.body?.get(2) as Uint8Array) };
}

export async function setPin(client: RawCtaphid, cid: number, pin: string): Promise<number> {
  const pp = await PlatformPin.agree(client, cid);
  const padded = Buffer.alloc(64);
  padded.write(pin, 'utf8');
  const newPinEnc = pp.encrypt(padded);
  const r = await client.cbor(
    cid,
    0x06,
    new Map<number, unknown>([
      [1, 2],
      [2, 3],
      [3, pp.platformKey],
      [4, pp.hmac(newPinEnc)],
      [5, newPinEnc],
    ]),
  );
  return r.status;
}
