// The card's frame around the applet: selection, instructions it does not know, chaining and GET RESPONSE,
// and the YubiKey version and serial. The instructions themselves have their own files.
import { describe, expect, it } from 'vitest';
import { encodeCommandApdu } from './apdu';
import { harness, hex } from './card.test-support';

const putCertificate = (length: number, cla = 0x00) => {
  const content = Buffer.alloc(length, 0xab);
  const body = Buffer.concat([
    Buffer.from('5c035fc105', 'hex'),
    Buffer.from(length < 0x100 ? [0x53, 0x81, length] : [0x53, 0x82, length >> 8, length & 0xff]),
    content,
  ]);
  return { body, content, apdu: encodeCommandApdu(cla, 0xdb, 0x3f, 0xff, body) };
};

describe('virtual PIV card: selection and framing', () => {
  it('answers SELECT of the PIV AID, truncated or whole, with the application property template', async () => {
    const h = await harness();
    const short = await h.send('00a4040005a000000308');
    expect(short.sw).toBe(0x9000);
    expect(hex(short.data)).toBe('61114f0600001000010079074f05a000000308');
    expect((await h.send('00a404000ba000000308000010000100')).sw).toBe(0x9000);
  });

  it('refuses another application with 6A82 and keeps PIV selected', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send('00a4040007a0000005272101')).sw).toBe(0x6a82);
    expect((await h.send('00a4040004a0000003')).sw).toBe(0x6a82);
    expect((await h.send('00fd000000')).sw).toBe(0x9000);
  });

  it('answers nothing but SELECT before the PIV application is selected (6D00)', async () => {
    const h = await harness();
    expect((await h.send('00fd000000')).sw).toBe(0x6d00);
    expect((await h.send('0020008000')).sw).toBe(0x6d00);
  });

  it('refuses unknown instructions (6D00), other classes (6E00) and malformed lengths (6700)', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send('0012000000')).sw).toBe(0x6d00);
    expect((await h.send('80fd000000')).sw).toBe(0x6e00);
    expect((await h.send('0cfd000000')).sw).toBe(0x6e00);
    expect((await h.send('0020008008313233')).sw).toBe(0x6700);
    expect((await h.send('00fd')).sw).toBe(0x6700);
    expect((await h.send('00fd000001aa')).sw).toBe(0x6700);
    expect((await h.send('00fd010000')).sw).toBe(0x6a86);
  });

  it('tells its firmware version and serial (YubiKey GET VERSION, GET SERIAL)', async () => {
    const h = await harness({ serial: 0x01020304 });
    await h.select();
    expect(await h.send('00fd000000')).toEqual({ data: Uint8Array.of(5, 7, 1), sw: 0x9000 });
    expect(await h.send('00f8000000')).toEqual({ data: Uint8Array.of(1, 2, 3, 4), sw: 0x9000 });
  });

  it('takes a long command in chained pieces (CLA 10) and hands a long answer out with 61xx', async () => {
    const h = await harness();
    await h.select();
    await h.authenticate();
    const { body, content } = putCertificate(700);
    for (let offset = 0; offset < body.length; offset += 255) {
      const last = offset + 255 >= body.length;
      const piece = body.subarray(offset, offset + 255);
      const answer = await h.send(encodeCommandApdu(last ? 0x00 : 0x10, 0xdb, 0x3f, 0xff, piece));
      expect(answer.sw).toBe(0x9000);
    }
    const first = await h.send('00cb3fff055c035fc105');
    expect(first.data.length).toBe(256);
    expect(first.sw).toBe(0x6100); // 256 or more left
    const second = await h.send('00c0000000');
    expect(second.sw).toBe(0x61c0); // 704 - 512 = 192 left
    const third = await h.send('00c0000000');
    expect(third.sw).toBe(0x9000);
    const whole = Buffer.concat([first.data, second.data, third.data]);
    expect(whole.subarray(0, 4)).toEqual(Buffer.from([0x53, 0x82, 0x02, 0xbc]));
    expect(whole.subarray(4)).toEqual(content);
  });

  it('hands out a shorter Le in pieces of that size', async () => {
    const h = await harness();
    await h.select();
    const answer = await h.send('00cb3fff055c035fff0180');
    expect(answer.data.length).toBe(0x80);
    expect(answer.sw & 0xff00).toBe(0x6100);
  });

  it('answers the whole object at once to an extended Le', async () => {
    const h = await harness();
    await h.select();
    await h.authenticate();
    const { content } = putCertificate(1000);
    expect((await h.send(putCertificate(1000).apdu)).sw).toBe(0x9000);
    const answer = await h.send(
      encodeCommandApdu(0, 0xcb, 0x3f, 0xff, Buffer.from('5c035fc105', 'hex'), 65536),
    );
    expect(answer.sw).toBe(0x9000);
    expect(Buffer.from(answer.data.subarray(4))).toEqual(content);
  });

  it('drops a waiting answer when another command comes, and refuses GET RESPONSE with nothing waiting', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send('00cb3fff055c035fff01')).sw & 0xff00).toBe(0x6100);
    expect((await h.send('00fd000000')).sw).toBe(0x9000);
    expect((await h.send('00c0000000')).sw).toBe(0x6985);
  });

  it('refuses a chain continued by another instruction (6883) and forgets it', async () => {
    const h = await harness();
    await h.select();
    await h.authenticate();
    expect(
      (await h.send(encodeCommandApdu(0x10, 0xdb, 0x3f, 0xff, Buffer.from('5c035fc105', 'hex')))).sw,
    ).toBe(0x9000);
    expect((await h.send('00fd000000')).sw).toBe(0x6883);
    expect((await h.send('00fd000000')).sw).toBe(0x9000);
  });

  it('refuses a chain longer than any object (6700)', async () => {
    const h = await harness();
    await h.select();
    let last = 0;
    for (let i = 0; i < 20 && last !== 0x6700; i++) {
      last = (await h.send(encodeCommandApdu(0x10, 0xdb, 0x3f, 0xff, new Uint8Array(255)))).sw;
    }
    expect(last).toBe(0x6700);
  });

  it('a new SELECT, a reset or a power-off ends the PIN and management-key status', async () => {
    const h = await harness();
    await h.select();
    expect((await h.verifyPin()).sw).toBe(0x9000);
    expect((await h.send('0020008000')).sw).toBe(0x9000);
    await h.select();
    expect((await h.send('0020008000')).sw).toBe(0x63c3);

    await h.authenticate();
    h.card.reset();
    await h.select();
    expect((await h.send('00db3fff0a5c035fc102 5303010203')).sw).toBe(0x6982);

    expect((await h.verifyPin()).sw).toBe(0x9000);
    h.card.powerOff();
    expect((await h.send('0020008000')).sw).toBe(0x6d00);
  });
});
