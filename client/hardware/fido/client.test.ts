import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { ctapMap } from './cbor';
import type { CtapMap } from './cbor';
import { Fido2Client, PREPARED_PIN_MAX_AGE_MS } from './client';
import {
  COSE_ALG,
  CTAP2_CMD,
  CTAP2_STATUS,
  Ctap2Error,
  encodeGetInfoResponse,
  encodeResponse,
  parseCoseKey,
  parseRequest,
} from './ctap2';
import { CTAPHID_CMD, encodeInitResponse, fragmentMessage, MessageAssembler } from './ctaphid';
import { CtaphidDevice } from './device';
import type { HidTransport } from './device';
import { AuthenticatorKeyAgreement, decrypt, encrypt, pinHash, unpadPin, verify } from './pin-protocol-2';

const CID = 0x00c0ffee;
const rpIdHash = createHash('sha256').update('example.com').digest();

/** A minimal authenticator speaking raw reports: getInfo, ClientPIN protocol 2, two resident credentials. */
class MiniKey implements HidTransport {
  pin: string | undefined;
  retries = 8;
  readonly token = new Uint8Array(32).fill(0x42);
  readonly keyAgreement = new AuthenticatorKeyAgreement();
  readonly received: { command: number; params: CtapMap | undefined }[] = [];
  #outbox: Uint8Array[] = [];
  #assembler = new MessageAssembler();

  async write(report: Uint8Array): Promise<void> {
    const message = this.#assembler.push(report);
    if (!message) return;
    const reply =
      message.cmd === CTAPHID_CMD.INIT
        ? encodeInitResponse({ nonce: message.payload, cid: CID, capabilities: 0x04 })
        : this.#cbor(message.payload);
    this.#outbox.push(...fragmentMessage(message.cid, message.cmd, reply));
  }
  async read(): Promise<Uint8Array> {
    const next = this.#outbox.shift();
    if (!next) throw new Error('MiniKey has nothing to say');
    return next;
  }
  async close(): Promise<void> {}

  #cbor(payload: Uint8Array): Uint8Array {
    const { command, params } = parseRequest(payload);
    this.received.push({ command, params });
    const p = params ?? new Map();
    if (command === CTAP2_CMD.GET_INFO) {
      return encodeGetInfoResponse({
        versions: ['FIDO_2_1'],
        extensions: [],
        aaguid: new Uint8Array(16),
        options: new Map([['clientPin', this.pin !== undefined]]),
        pinUvAuthProtocols: [2],
        transports: ['usb'],
        algorithms: [{ type: 'public-key', alg: COSE_ALG.ES256 }],
      });
    }
    if (command === CTAP2_CMD.CLIENT_PIN) {
      const sub = p.get(0x02);
      if (sub === 0x01) return encodeResponse(0, ctapMap([[0x03, this.retries]]));
      if (sub === 0x02) return encodeResponse(0, ctapMap([[0x01, this.keyAgreement.publicKey()]]));
      const shared = this.keyAgreement.decapsulate(parseCoseKey(p.get(0x03) as CtapMap));
      if (sub === 0x03) {
        const newPinEnc = p.get(0x05) as Uint8Array;
        if (!verify(shared, newPinEnc, p.get(0x04) as Uint8Array))
          return Uint8Array.of(CTAP2_STATUS.PIN_AUTH_INVALID);
        this.pin = unpadPin(decrypt(shared, newPinEnc));
        return Uint8Array.of(0);
      }
      if (sub === 0x09) {
        const hash = decrypt(shared, p.get(0x06) as Uint8Array);
        if (!this.pin || Buffer.compare(Buffer.from(hash), Buffer.from(pinHash(this.pin))) !== 0) {
          this.retries -= 1;
          return Uint8Array.of(CTAP2_STATUS.PIN_INVALID);
        }
        return encodeResponse(0, ctapMap([[0x02, encrypt(shared, this.token)]]));
      }
    }
    if (command === CTAP2_CMD.GET_ASSERTION || command === CTAP2_CMD.GET_NEXT_ASSERTION) {
      if (command === CTAP2_CMD.GET_ASSERTION) {
        const ok = verify(this.token, p.get(0x02) as Uint8Array, p.get(0x06) as Uint8Array);
        if (!ok) return Uint8Array.of(CTAP2_STATUS.PIN_AUTH_INVALID);
      }
      const index = command === CTAP2_CMD.GET_ASSERTION ? 0 : 1;
      const authData = Uint8Array.from([...rpIdHash, 0x05, 0, 0, 0, index + 1]);
      return encodeResponse(
        0,
        ctapMap([
          [
            0x01,
            ctapMap([
              ['id', Uint8Array.of(index)],
              ['type', 'public-key'],
            ]),
          ],
          [0x02, authData],
          [0x03, new Uint8Array(70)],
          [
            0x04,
            ctapMap([
              ['id', Uint8Array.of(0x10 + index)],
              ['name', `user${index}`],
            ]),
          ],
          [0x05, index === 0 ? 2 : undefined],
        ]),
      );
    }
    return Uint8Array.of(CTAP2_STATUS.INVALID_COMMAND);
  }
}

async function clientFor(key: MiniKey) {
  return new Fido2Client(await CtaphidDevice.open(key));
}

describe('Fido2Client', () => {
  it('sets a PIN on a key without one, then gets a token with permissions', async () => {
    const key = new MiniKey();
    const client = await clientFor(key);
    await client.setPin('4321');
    expect(key.pin).toBe('4321');
    const token = await client.getPinToken('4321', ['ga'], 'example.com');
    expect(token).toEqual(key.token);
    const request = key.received.at(-1)!.params!;
    expect(request.get(0x09)).toBe(0x02);
    expect(request.get(0x0a)).toBe('example.com');
  });

  it('reports a wrong PIN as PIN_INVALID with retries left', async () => {
    const key = new MiniKey();
    key.pin = '4321';
    const client = await clientFor(key);
    await expect(client.getPinToken('0000', ['mc'])).rejects.toMatchObject({ code: 'PIN_INVALID' });
    expect(await client.getPinRetries()).toBe(7);
  });

  it('collects every assertion with getNextAssertion, authenticated with the PIN token', async () => {
    const key = new MiniKey();
    key.pin = '4321';
    const client = await clientFor(key);
    const token = await client.getPinToken('4321', ['ga'], 'example.com');
    const clientDataHash = createHash('sha256').update('{}').digest();
    const assertions = await client.getAssertion({
      rpId: 'example.com',
      clientDataHash,
      pinUvAuthToken: token,
    });
    expect(assertions.map((a) => a.user?.name)).toEqual(['user0', 'user1']);
    expect(assertions.map((a) => a.authData.signCount)).toEqual([1, 2]);
    expect(key.received.map((r) => r.command).slice(-2)).toEqual([
      CTAP2_CMD.GET_ASSERTION,
      CTAP2_CMD.GET_NEXT_ASSERTION,
    ]);
  });

  it('uses PIN retries asked ahead once, and only while fresh; never asks the key-agreement ahead', async () => {
    const key = new MiniKey();
    key.pin = '4321';
    const client = await clientFor(key);
    const keyAgreements = () => key.received.filter((r) => r.params?.get(0x02) === 0x02).length;
    await client.preparePin();
    expect(keyAgreements()).toBe(0);
    expect(client.takePreparedPinRetries()).toBe(8);
    expect(client.takePreparedPinRetries()).toBeUndefined();
    // The key-agreement is asked right before the PIN goes: a stale one would spend an attempt.
    expect(await client.getPinToken('4321', ['ga'], 'example.com')).toEqual(key.token);
    expect(keyAgreements()).toBe(1);
    // Too old: the retries may have changed since (a wrong PIN elsewhere); asked afresh by the caller.
    await client.preparePin();
    const now = performance.now();
    const clock = vi.spyOn(performance, 'now').mockReturnValue(now + PREPARED_PIN_MAX_AGE_MS + 1);
    try {
      expect(client.takePreparedPinRetries()).toBeUndefined();
    } finally {
      clock.mockRestore();
    }
  });

  it('turns an unusable key-agreement key into a typed error', async () => {
    const key = new MiniKey();
    key.keyAgreement.publicKey = () =>
      ctapMap([
        [1, 2],
        [3, -25],
        [-1, 1],
        [-2, new Uint8Array(32)],
        [-3, new Uint8Array(32)],
      ]);
    const client = await clientFor(key);
    await expect(client.setPin('4321')).rejects.toBeInstanceOf(Ctap2Error);
  });
});
