import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeCommandApdu } from './apdu';
import { decryptBlock, DEFAULT_KEY, encryptBlock, generateApdu, harness } from './card.test-support';

const ga = (algorithm: number, template: Buffer) =>
  encodeCommandApdu(0, 0x87, algorithm, 0x9b, Buffer.concat([Buffer.of(0x7c, template.length), template]));
const tlv = (tag: number, value: Uint8Array) => Buffer.concat([Buffer.of(tag, value.length), value]);

describe('virtual PIV card: the management key (9B)', () => {
  it('does mutual authentication with the default AES-192 key (YubiKey 5.7) and then generates', async () => {
    const h = await harness();
    expect(h.state.managementKey.algorithm).toBe(0x0a);
    await h.select();
    expect((await h.send(generateApdu(0x9a))).sw).toBe(0x6982);
    await h.authenticate(0x0a);
    expect((await h.send(generateApdu(0x9a))).sw).toBe(0x9000);
  });

  it('does mutual authentication with the default 3DES key (older YubiKeys, yubico-piv-tool 2.2)', async () => {
    const h = await harness({ managementKeyAlgorithm: '3des' });
    await h.select();
    await h.authenticate(0x03);
    expect((await h.send(generateApdu(0x9a))).sw).toBe(0x9000);
  });

  it('accepts the witness alone, without a challenge for the card', async () => {
    const h = await harness();
    await h.select();
    const first = await h.send(ga(0x0a, Buffer.from('8000', 'hex')));
    const witness = decryptBlock(0x0a, DEFAULT_KEY, first.data.subarray(4));
    expect(await h.send(ga(0x0a, tlv(0x80, witness)))).toEqual({ data: new Uint8Array(0), sw: 0x9000 });
    expect((await h.send(generateApdu(0x9e))).sw).toBe(0x9000);
  });

  it('accepts the challenge-response way in (7C{81 ∅} then 7C{82 E(K,c)})', async () => {
    const h = await harness();
    await h.select();
    const first = await h.send(ga(0x0a, Buffer.from('8100', 'hex')));
    expect(first.sw).toBe(0x9000);
    const challenge = first.data.subarray(4);
    expect(challenge.length).toBe(16);
    const answer = encryptBlock(0x0a, DEFAULT_KEY, challenge);
    expect((await h.send(ga(0x0a, tlv(0x82, answer)))).sw).toBe(0x9000);
    expect((await h.send(generateApdu(0x9e))).sw).toBe(0x9000);
  });

  it('refuses a wrong witness (6982) and needs a new exchange afterwards', async () => {
    const h = await harness();
    await h.select();
    const first = await h.send(ga(0x0a, Buffer.from('8000', 'hex')));
    const witness = decryptBlock(0x0a, DEFAULT_KEY, first.data.subarray(4));
    witness[0] = (witness[0] as number) ^ 1;
    expect(await h.send(ga(0x0a, tlv(0x80, witness))).then((a) => a.sw)).toBe(0x6982);
    witness[0] = (witness[0] as number) ^ 1;
    expect((await h.send(ga(0x0a, tlv(0x80, witness)))).sw).toBe(0x6982);
    expect((await h.send(generateApdu(0x9a))).sw).toBe(0x6982);
  });

  it('a witness is good for the next command only', async () => {
    const h = await harness();
    await h.select();
    const first = await h.send(ga(0x0a, Buffer.from('8000', 'hex')));
    const witness = decryptBlock(0x0a, DEFAULT_KEY, first.data.subarray(4));
    await h.send('00fd000000');
    expect((await h.send(ga(0x0a, tlv(0x80, witness)))).sw).toBe(0x6982);
  });

  it('refuses another algorithm than the key has (6A86) and malformed templates (6A80)', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send(ga(0x03, Buffer.from('8000', 'hex')))).sw).toBe(0x6a86);
    expect((await h.send(ga(0x0a, Buffer.from('800081008200', 'hex')))).sw).toBe(0x6a80);
    expect((await h.send(encodeCommandApdu(0, 0x87, 0x0a, 0x9b, Buffer.from('7c03800000', 'hex')))).sw).toBe(
      0x6a80,
    );
    expect((await h.send(encodeCommandApdu(0, 0x87, 0x0a, 0x9b, Buffer.from('7d028000', 'hex')))).sw).toBe(
      0x6a80,
    );
    expect((await h.send(ga(0x0a, tlv(0x80, Buffer.alloc(8))))).sw).toBe(0x6a80);
  });

  it('sets a new management key (YubiKey SET MANAGEMENT KEY) after authentication, and only then', async () => {
    const h = await harness();
    await h.select();
    const newKey = randomBytes(32);
    const set = encodeCommandApdu(0, 0xff, 0xff, 0xff, Buffer.concat([Buffer.of(0x0c, 0x9b, 32), newKey]));
    expect((await h.send(set)).sw).toBe(0x6982);
    await h.authenticate();
    expect((await h.send(set)).sw).toBe(0x9000);
    expect(h.state.managementKey).toEqual({ algorithm: 0x0c, keyHex: newKey.toString('hex') });
    expect(Buffer.from((await h.send('00f7009b00')).data).toString('hex')).toBe(
      '01010c' + '02020101' + '050100',
    );
    await h.select();
    await expect(h.authenticate(0x0c, randomBytes(32))).rejects.toThrow(/6982/);
    await h.authenticate(0x0c, newKey);
    const tooShort = encodeCommandApdu(
      0,
      0xff,
      0xff,
      0xff,
      Buffer.concat([Buffer.of(0x0a, 0x9b, 16), newKey.subarray(0, 16)]),
    );
    expect((await h.send(tooShort)).sw).toBe(0x6a80);
  });

  it('tells the default key apart in GET METADATA 9B', async () => {
    const h = await harness();
    await h.select();
    expect(Buffer.from((await h.send('00f7009b00')).data).toString('hex')).toBe(
      '01010a' + '02020101' + '050101',
    );
  });
});
