import { createECDH, createHash, createPublicKey, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeCommandApdu } from './apdu';
import type { Harness } from './card.test-support';
import { generateApdu, harness, signApdu } from './card.test-support';

const digestOf = (message: string) => createHash('sha256').update(message).digest();

/** The public key from GENERATE's 7F49 { 86 point } answer. */
function publicKeyOf(answer: Uint8Array): KeyObject {
  expect(Buffer.from(answer.subarray(0, 5)).toString('hex')).toBe('7f49438641');
  const point = Buffer.from(answer.subarray(5));
  return createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33).toString('base64url'),
    },
    format: 'jwk',
  });
}

async function generated(h: Harness, slot: number, pin?: number, touch?: number): Promise<KeyObject> {
  await h.authenticate();
  const answer = await h.send(generateApdu(slot, pin, touch));
  expect(answer.sw).toBe(0x9000);
  return publicKeyOf(answer.data);
}

/** Signs "message" in `slot`; returns the SW and whether the signature verifies. */
async function sign(h: Harness, slot: number, message = 'message'): Promise<{ sw: number; valid: boolean }> {
  const answer = await h.send(signApdu(slot, digestOf(message)));
  if (answer.sw !== 0x9000) return { sw: answer.sw, valid: false };
  const [tag, length, inner, innerLength] = answer.data;
  expect([tag, inner]).toEqual([0x7c, 0x82]);
  expect(length).toBe((innerLength as number) + 2);
  const key = h.state.slots[slot.toString(16)];
  const publicKey = createPublicKey(key?.privateKeyPem as string);
  return { sw: answer.sw, valid: verify('sha256', Buffer.from(message), publicKey, answer.data.subarray(4)) };
}

describe('virtual PIV card: slot keys', () => {
  it('generates a P-256 key and signs a SHA-256 digest with it: a DER signature in 7C { 82 }', async () => {
    const h = await harness();
    await h.select();
    const publicKey = await generated(h, 0x9e);
    const answer = await h.send(signApdu(0x9e, digestOf('hello')));
    expect(answer.sw).toBe(0x9000);
    expect(verify('sha256', Buffer.from('hello'), publicKey, answer.data.subarray(4))).toBe(true);
    expect(verify('sha256', Buffer.from('hellO'), publicKey, answer.data.subarray(4))).toBe(false);
  });

  it('signs digests shorter than the field as the integer they are (SHA-1, 20 bytes)', async () => {
    const h = await harness();
    await h.select();
    const publicKey = await generated(h, 0x9e);
    const digest = createHash('sha1').update('x').digest();
    const answer = await h.send(signApdu(0x9e, digest));
    expect(verify('sha1', Buffer.from('x'), publicKey, answer.data.subarray(4))).toBe(true);
  });

  it('refuses what it cannot generate: RSA (6A80), bad policies (6A80), slot 9B or f9 (6A86)', async () => {
    const h = await harness();
    await h.select();
    await h.authenticate();
    expect((await h.send(encodeCommandApdu(0, 0x47, 0, 0x9a, Buffer.from('ac03800107', 'hex')))).sw).toBe(
      0x6a80,
    );
    expect((await h.send(generateApdu(0x9a, 4))).sw).toBe(0x6a80);
    expect((await h.send(generateApdu(0x9a, 1, 9))).sw).toBe(0x6a80);
    expect(
      (await h.send(encodeCommandApdu(0, 0x47, 0, 0x9a, Buffer.from('ac06800111ac0100', 'hex')))).sw,
    ).toBe(0x6a80);
    expect((await h.send(generateApdu(0x9b))).sw).toBe(0x6a86);
    expect((await h.send(generateApdu(0xf9))).sw).toBe(0x6a86);
    expect(h.state.slots).toEqual({});
  });

  it('applies the slot defaults: 9a PIN once, 9c always, 9e never, touch never', async () => {
    const h = await harness();
    await h.select();
    for (const slot of [0x9a, 0x9c, 0x9d, 0x9e, 0x82]) await generated(h, slot);
    const policies = Object.fromEntries(
      Object.entries(h.state.slots).map(([s, k]) => [s, [k.pinPolicy, k.touchPolicy]]),
    );
    expect(policies).toEqual({ '9a': [2, 1], '9c': [3, 1], '9d': [2, 1], '9e': [1, 1], '82': [2, 1] });
  });

  it('refuses to sign with an empty slot (6A88), another algorithm (6A86) or a malformed request (6A80)', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send(signApdu(0x9a, digestOf('m')))).sw).toBe(0x6a88);
    await generated(h, 0x9e);
    expect(
      (await h.send(encodeCommandApdu(0, 0x87, 0x14, 0x9e, Buffer.from('7c0482008100', 'hex')))).sw,
    ).toBe(0x6a86);
    expect((await h.send(signApdu(0x9e, new Uint8Array(33)))).sw).toBe(0x6a80);
    expect((await h.send(signApdu(0x9e, new Uint8Array(0)))).sw).toBe(0x6a80);
    expect(
      (await h.send(encodeCommandApdu(0, 0x87, 0x11, 0x9e, Buffer.from('7c0481020102', 'hex')))).sw,
    ).toBe(0x6a80);
    expect(
      (await h.send(encodeCommandApdu(0, 0x87, 0x11, 0x9e, Buffer.from('7c06820081010182', 'hex')))).sw,
    ).toBe(0x6a80);
    expect(
      (await h.send(encodeCommandApdu(0, 0x87, 0x11, 0x9b + 0x80, Buffer.from('7c0482008100', 'hex')))).sw,
    ).toBe(0x6a86);
  });

  it('PIN policy never: signs without a PIN', async () => {
    const h = await harness();
    await h.select();
    await generated(h, 0x9a, 1);
    expect(await sign(h, 0x9a)).toEqual({ sw: 0x9000, valid: true });
  });

  it('PIN policy once: 6982 until VERIFY, then any number of signatures in the selection', async () => {
    const h = await harness();
    await h.select();
    await generated(h, 0x9a, 2);
    expect((await sign(h, 0x9a)).sw).toBe(0x6982);
    await h.verifyPin();
    for (let i = 0; i < 3; i++) expect(await sign(h, 0x9a, `m${i}`)).toEqual({ sw: 0x9000, valid: true });
    await h.select();
    expect((await sign(h, 0x9a)).sw).toBe(0x6982);
  });

  it('PIN policy always: one VERIFY per signature', async () => {
    const h = await harness();
    await h.select();
    await generated(h, 0x9c, 3);
    expect((await sign(h, 0x9c)).sw).toBe(0x6982);
    await h.verifyPin();
    expect((await h.send('00cb3fff055c035fc10a')).sw).toBe(0x6a82); // other commands between are fine
    expect((await sign(h, 0x9c)).sw).toBe(0x9000);
    expect((await sign(h, 0x9c)).sw).toBe(0x6982);
    await h.verifyPin();
    expect((await sign(h, 0x9c)).sw).toBe(0x9000);
  });

  it('touch policy always: one touch per signature; a refused touch is 6982', async () => {
    const h = await harness();
    await h.select();
    await generated(h, 0x9e, 1, 2);
    expect((await sign(h, 0x9e)).sw).toBe(0x9000);
    expect((await sign(h, 0x9e)).sw).toBe(0x9000);
    expect(h.touch.requests).toBe(2);
    h.touch.script = ['denied'];
    expect((await sign(h, 0x9e)).sw).toBe(0x6982);
    h.touch.script = ['timeout'];
    expect((await sign(h, 0x9e)).sw).toBe(0x6982);
  });

  it('touch policy cached: no new touch within 15 s of the last one, on the card clock', async () => {
    const h = await harness();
    await h.select();
    await generated(h, 0x9e, 1, 3);
    expect((await sign(h, 0x9e)).sw).toBe(0x9000);
    expect(h.touch.requests).toBe(1);
    h.clock.now += 14_999;
    expect((await sign(h, 0x9e)).sw).toBe(0x9000);
    expect(h.touch.requests).toBe(1);
    h.clock.now += 1;
    expect((await sign(h, 0x9e)).sw).toBe(0x9000);
    expect(h.touch.requests).toBe(2);
  });

  it('touch policy never: no touch asked', async () => {
    const h = await harness();
    await h.select();
    await generated(h, 0x9e, 1, 1);
    await sign(h, 0x9e);
    expect(h.touch.requests).toBe(0);
  });

  it('checks the PIN before asking for a touch', async () => {
    const h = await harness();
    await h.select();
    await generated(h, 0x9a, 2, 2);
    expect((await sign(h, 0x9a)).sw).toBe(0x6982);
    expect(h.touch.requests).toBe(0);
  });

  it('does ECDH with a slot key (7C { 82 ∅, 85 point } → 7C { 82 x })', async () => {
    const h = await harness();
    await h.select();
    const publicKey = await generated(h, 0x9d, 1);
    const peer = createECDH('prime256v1');
    peer.generateKeys();
    const body = Buffer.concat([Buffer.from('82008541', 'hex'), peer.getPublicKey()]);
    const answer = await h.send(
      encodeCommandApdu(0, 0x87, 0x11, 0x9d, Buffer.concat([Buffer.of(0x7c, body.length), body])),
    );
    expect(answer.sw).toBe(0x9000);
    const jwk = publicKey.export({ format: 'jwk' });
    const cardPoint = Buffer.concat([
      Buffer.of(4),
      Buffer.from(jwk.x as string, 'base64url'),
      Buffer.from(jwk.y as string, 'base64url'),
    ]);
    expect(Buffer.from(answer.data.subarray(4))).toEqual(peer.computeSecret(cardPoint));
  });

  it('tells a slot key in GET METADATA: algorithm, policies, generated, public key; 6A88 when empty', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send('00f7009a00')).sw).toBe(0x6a88);
    const publicKey = await generated(h, 0x9a, 3, 3);
    const answer = await h.send('00f7009a00');
    const hexAnswer = Buffer.from(answer.data).toString('hex');
    expect(hexAnswer.slice(0, 28)).toBe('010111' + '02020303' + '030101' + '04438641');
    const point = Buffer.from(answer.data.subarray(14));
    expect(
      createPublicKey({
        key: Buffer.concat([
          Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
          point,
        ]),
        format: 'der',
        type: 'spki',
      }).export({ format: 'jwk' }),
    ).toEqual(publicKey.export({ format: 'jwk' }));
  });
});
