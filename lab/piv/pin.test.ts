import { describe, expect, it } from 'vitest';
import { encodeCommandApdu } from './apdu';
import { harness, paddedPin } from './card.test-support';

const change = (reference: number, old: string, next: string) =>
  encodeCommandApdu(0, 0x24, 0, reference, Buffer.concat([paddedPin(old), paddedPin(next)]));
const unblock = (puk: string, newPin: string) =>
  encodeCommandApdu(0, 0x2c, 0, 0x80, Buffer.concat([paddedPin(puk), paddedPin(newPin)]));

describe('virtual PIV card: PIN and PUK', () => {
  it('an empty VERIFY tells the tries left (63C3), and 9000 once verified', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send('0020008000')).sw).toBe(0x63c3);
    expect((await h.verifyPin('123456')).sw).toBe(0x9000);
    expect((await h.send('0020008000')).sw).toBe(0x9000);
  });

  it('counts wrong PINs down (63C2, 63C1, 63C0), then answers blocked (6983), and persists the count', async () => {
    const h = await harness();
    await h.select();
    expect((await h.verifyPin('000000')).sw).toBe(0x63c2);
    expect((await h.verifyPin('000000')).sw).toBe(0x63c1);
    expect(h.state.pin.retries).toBe(1);
    expect((await h.verifyPin('000000')).sw).toBe(0x63c0);
    expect((await h.verifyPin('123456')).sw).toBe(0x6983);
    expect((await h.send('0020008000')).sw).toBe(0x6983);
    expect(h.state.pin.retries).toBe(0);
    expect(h.saves()).toBeGreaterThanOrEqual(3);
  });

  it('a right PIN restores the tries; a wrong one ends the verified status', async () => {
    const h = await harness();
    await h.select();
    await h.verifyPin('000000');
    expect((await h.verifyPin()).sw).toBe(0x9000);
    expect(h.state.pin.retries).toBe(3);
    expect((await h.verifyPin('654321')).sw).toBe(0x63c2);
    expect((await h.send('0020008000')).sw).toBe(0x63c2);
  });

  it('VERIFY with P1 FF forgets the verification (YubiKey)', async () => {
    const h = await harness();
    await h.select();
    await h.verifyPin();
    expect((await h.send('0020ff8000')).sw).toBe(0x9000);
    expect((await h.send('0020008000')).sw).toBe(0x63c3);
  });

  it('refuses a PIN of the wrong length (6700) or for another reference (6A88)', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send('00200080063132333435 36')).sw).toBe(0x6700);
    expect((await h.send(encodeCommandApdu(0, 0x20, 0, 0x81, paddedPin('123456')))).sw).toBe(0x6a88);
    expect((await h.send(encodeCommandApdu(0, 0x20, 1, 0x80, paddedPin('123456')))).sw).toBe(0x6a86);
    expect(h.state.pin.retries).toBe(3);
  });

  it('changes the PIN with the old one, and refuses a new PIN shorter than 6 (6A80)', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send(change(0x80, '123456', '12345'))).sw).toBe(0x6a80);
    expect((await h.send(change(0x80, '123456', '24681357'))).sw).toBe(0x9000);
    expect((await h.verifyPin('123456')).sw).toBe(0x63c2);
    expect((await h.verifyPin('24681357')).sw).toBe(0x9000);
    expect((await h.send(change(0x80, '999999', '111111'))).sw).toBe(0x63c2);
    expect((await h.send('0020008000')).sw).toBe(0x63c2);
  });

  it('refuses a new PIN with bytes after its padding', async () => {
    const h = await harness();
    await h.select();
    const bad = Buffer.concat([paddedPin('123456'), Buffer.from('313233343536ff31', 'hex')]);
    expect((await h.send(encodeCommandApdu(0, 0x24, 0, 0x80, bad))).sw).toBe(0x6a80);
  });

  it('changes the PUK, whose tries are counted apart from the PIN', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send(change(0x81, '00000000', '87654321'))).sw).toBe(0x63c2);
    expect(h.state.pin.retries).toBe(3);
    expect((await h.send(change(0x81, '12345678', '87654321'))).sw).toBe(0x9000);
    expect(h.state.puk.retries).toBe(3);
  });

  it('unblocks a blocked PIN with the PUK (RESET RETRY COUNTER), setting the new PIN', async () => {
    const h = await harness();
    await h.select();
    for (let i = 0; i < 3; i++) await h.verifyPin('000000');
    expect((await h.verifyPin()).sw).toBe(0x6983);
    expect((await h.send(unblock('00000000', '222222'))).sw).toBe(0x63c2);
    expect((await h.send(unblock('12345678', '222222'))).sw).toBe(0x9000);
    expect(h.state.pin.retries).toBe(3);
    expect((await h.verifyPin('222222')).sw).toBe(0x9000);
  });

  it('a blocked PUK unblocks nothing (6983)', async () => {
    const h = await harness();
    await h.select();
    for (let i = 0; i < 3; i++) await h.send(unblock('00000000', '222222'));
    expect(h.state.puk.retries).toBe(0);
    expect((await h.send(unblock('12345678', '222222'))).sw).toBe(0x6983);
    expect((await h.send(change(0x81, '12345678', '11111111'))).sw).toBe(0x6983);
  });

  it('tells PIN and PUK metadata: default or not, tries (GET METADATA 80/81)', async () => {
    const h = await harness();
    await h.select();
    expect(Buffer.from((await h.send('00f7008000')).data).toString('hex')).toBe(
      '0101ff' + '050101' + '06020303',
    );
    await h.send(change(0x80, '123456', '654321'));
    await h.verifyPin('000000');
    expect(Buffer.from((await h.send('00f7008000')).data).toString('hex')).toBe(
      '0101ff' + '050100' + '06020302',
    );
    expect(Buffer.from((await h.send('00f7008100')).data).toString('hex')).toBe(
      '0101ff' + '050101' + '06020303',
    );
  });

  it('RESET (YubiKey) needs both PIN and PUK blocked, then brings back the defaults', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send('00fb000000')).sw).toBe(0x6985);
    for (let i = 0; i < 3; i++) await h.verifyPin('000000');
    expect((await h.send('00fb000000')).sw).toBe(0x6985);
    for (let i = 0; i < 3; i++) await h.send(unblock('00000000', '222222'));
    expect((await h.send('00fb000000')).sw).toBe(0x9000);
    expect((await h.verifyPin('123456')).sw).toBe(0x9000);
    expect(h.state.puk.retries).toBe(3);
    expect(Object.keys(h.state.objects)).toEqual(['5fff01']); // the f9 certificate stays
  });
});
