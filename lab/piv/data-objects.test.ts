import { describe, expect, it } from 'vitest';
import { encodeCommandApdu } from './apdu';
import type { Answer } from './card.test-support';
import { harness } from './card.test-support';

const put = (tagHex: string, content: Buffer) => {
  const tag = Buffer.from(tagHex, 'hex');
  const length =
    content.length < 0x80
      ? [content.length]
      : content.length < 0x100
        ? [0x81, content.length]
        : [0x82, content.length >> 8, content.length & 0xff];
  return encodeCommandApdu(
    0,
    0xdb,
    0x3f,
    0xff,
    Buffer.concat([Buffer.of(0x5c, tag.length), tag, Buffer.of(0x53, ...length), content]),
  );
};
const get = (tagHex: string) =>
  `00cb3fff${(tagHex.length / 2 + 2).toString(16).padStart(2, '0')}5c${(tagHex.length / 2).toString(16).padStart(2, '0')}${tagHex}`;

describe('virtual PIV card: data objects', () => {
  it('answers 6A82 for an object never written (a fresh card has no CHUID, CCC or certificates)', async () => {
    const h = await harness();
    await h.select();
    for (const tag of ['5fc102', '5fc107', '5fc105', '5fc10a', '5fc10b', '5fc101']) {
      expect((await h.send(get(tag))).sw).toBe(0x6a82);
    }
  });

  it('writes an object only after management-key authentication, and reads it back in 53', async () => {
    const h = await harness();
    await h.select();
    const chuid = Buffer.from('3019d4e739da739ced39ce739d836858210842108421c84210c3eb3410', 'hex');
    expect((await h.send(put('5fc102', chuid))).sw).toBe(0x6982);
    await h.authenticate();
    expect((await h.send(put('5fc102', chuid))).sw).toBe(0x9000);
    const answer = await h.send(get('5fc102'));
    expect(Buffer.from(answer.data)).toEqual(Buffer.concat([Buffer.of(0x53, chuid.length), chuid]));
    expect(h.state.objects['5fc102']).toBe(chuid.toString('hex'));
  });

  it('deletes an object written empty', async () => {
    const h = await harness();
    await h.select();
    await h.authenticate();
    await h.send(put('5fc10a', Buffer.from('700101', 'hex')));
    expect((await h.send(put('5fc10a', Buffer.alloc(0)))).sw).toBe(0x9000);
    expect((await h.send(get('5fc10a'))).sw).toBe(0x6a82);
  });

  it('answers the discovery object, and refuses to overwrite it', async () => {
    const h = await harness();
    await h.select();
    const answer = await h.send(get('7e'));
    expect(Buffer.from(answer.data).toString('hex')).toBe('7e124f0ba0000003080000100001005f2f024000');
    await h.authenticate();
    expect((await h.send(put('7e', Buffer.from('00', 'hex')))).sw).toBe(0x6a80);
  });

  it('reads printed information only after the PIN', async () => {
    const h = await harness();
    await h.select();
    await h.authenticate();
    await h.send(put('5fc109', Buffer.from('8801aa', 'hex')));
    expect((await h.send(get('5fc109'))).sw).toBe(0x6982);
    await h.verifyPin();
    expect((await h.send(get('5fc109'))).sw).toBe(0x9000);
  });

  it('refuses objects larger than a YubiKey holds (6A84), bad tags (6A80) and other P1P2 (6A86)', async () => {
    const h = await harness();
    await h.select();
    await h.authenticate();
    const body = Buffer.concat([Buffer.from('5c035fc10553820c00', 'hex'), Buffer.alloc(3072)]);
    let answer: Answer = { sw: 0, data: new Uint8Array(0) };
    for (let offset = 0; offset < body.length; offset += 255) {
      const last = offset + 255 >= body.length;
      answer = await h.send(
        encodeCommandApdu(last ? 0x00 : 0x10, 0xdb, 0x3f, 0xff, body.subarray(offset, offset + 255)),
      );
    }
    expect(answer.sw).toBe(0x6a84);
    expect(h.state.objects['5fc105']).toBeUndefined();
    expect((await h.send('00cb3fff065c045fc10501')).sw).toBe(0x6a80);
    expect((await h.send('00cb3fff025c00')).sw).toBe(0x6a80);
    expect((await h.send('00cb3ffe055c035fc105')).sw).toBe(0x6a86);
    expect((await h.send('00cb3fff055c035fc1')).sw).toBe(0x6700);
  });
});
