// The card's side of the vpcd protocol, on bytes and against a loopback TCP peer that speaks vpcd's
// side of it (the real vpcd inside pcscd is exercised by test/piv-lab-card.test.ts).
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ATR, PivCard } from './card';
import { freshState, ScriptedTouch } from './card.test-support';
import { answerVpcdMessage, encodeFrame, VpcdFramer, VpcdLink } from './vpcd';

async function newCard(): Promise<PivCard> {
  return new PivCard(await freshState(), { now: Date.now, touch: new ScriptedTouch(), save: () => {} });
}

describe('vpcd framing', () => {
  it('prefixes a 2-byte big-endian length', () => {
    expect(Buffer.from(encodeFrame(new Uint8Array(300))).subarray(0, 2)).toEqual(Buffer.of(0x01, 0x2c));
    expect(Buffer.from(encodeFrame(Uint8Array.of(4)))).toEqual(Buffer.of(0, 1, 4));
  });

  it('reassembles frames however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map(encodeFrame));
          const framer = new VpcdFramer();
          const out: Uint8Array[] = [];
          let offset = 0;
          for (let i = 0; offset < stream.length; i++) {
            const size = cuts[i % cuts.length] as number;
            out.push(...framer.push(stream.subarray(offset, offset + size)));
            offset += size;
          }
          expect(out.map((f) => Buffer.from(f))).toEqual(payloads.map((p) => Buffer.from(p)));
        },
      ),
    );
  });
});

describe('vpcd messages', () => {
  it('answers the ATR request, and nothing to power on, off or reset', async () => {
    const card = await newCard();
    expect(await answerVpcdMessage(card, Uint8Array.of(4))).toEqual(ATR);
    for (const control of [0, 1, 2])
      expect(await answerVpcdMessage(card, Uint8Array.of(control))).toBeUndefined();
  });

  it('a power-off forgets the selection; longer messages are APDUs', async () => {
    const card = await newCard();
    const select = Uint8Array.from(Buffer.from('00a4040005a000000308', 'hex'));
    expect(Buffer.from((await answerVpcdMessage(card, select)) as Uint8Array).subarray(-2)).toEqual(
      Buffer.of(0x90, 0),
    );
    await answerVpcdMessage(card, Uint8Array.of(0));
    const version = Uint8Array.from(Buffer.from('00fd000000', 'hex'));
    expect(Buffer.from((await answerVpcdMessage(card, version)) as Uint8Array)).toEqual(Buffer.of(0x6d, 0));
  });

  it("the ATR is a YubiKey 5 NFC's, with a right check byte", () => {
    expect(Buffer.from(ATR).toString('hex')).toBe('3bfd1300008131fe158073c021c057597562694b657940');
    expect(ATR.subarray(1).reduce((x, b) => x ^ b, 0)).toBe(0);
  });
});

describe('the card in a vpcd reader (VpcdLink)', () => {
  let server: Server | undefined;
  let link: VpcdLink | undefined;
  afterEach(async () => {
    await link?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  /** A loopback listener that plays vpcd: it accepts the card and exchanges frames with it. */
  async function fakeReader(): Promise<{ port: number; next: () => Promise<Socket> }> {
    const accepted: Socket[] = [];
    const waiters: Array<(s: Socket) => void> = [];
    server = createServer((socket) => {
      const waiter = waiters.shift();
      if (waiter) waiter(socket);
      else accepted.push(socket);
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    return {
      port: typeof address === 'object' && address ? address.port : 0,
      next: () => {
        const ready = accepted.shift();
        return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
      },
    };
  }

  function exchange(socket: Socket, payload: Uint8Array): Promise<Uint8Array> {
    const framer = new VpcdFramer();
    return new Promise((resolve) => {
      const onData = (chunk: Buffer) => {
        const [frame] = framer.push(chunk);
        if (frame) {
          socket.off('data', onData);
          resolve(frame);
        }
      };
      socket.on('data', onData);
      socket.write(encodeFrame(payload));
    });
  }

  it('connects, answers ATR and APDUs, leaves on remove and comes back on insert', async () => {
    const reader = await fakeReader();
    const events: string[] = [];
    const card = await newCard();
    const seen: string[] = [];
    link = new VpcdLink({
      card,
      port: reader.port,
      emit: (e) => events.push(e.event),
      onApdu: (a) => seen.push(Buffer.from(a).toString('hex')),
    });
    link.insert();
    const socket = await reader.next();
    expect(Buffer.from(await exchange(socket, Uint8Array.of(4)))).toEqual(Buffer.from(ATR));
    const answer = await exchange(socket, Uint8Array.from(Buffer.from('00a4040005a000000308', 'hex')));
    expect(Buffer.from(answer).subarray(-2)).toEqual(Buffer.of(0x90, 0x00));
    expect(seen).toEqual(['00a4040005a000000308']);

    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await link.remove();
    await closed;
    expect(events).toContain('disconnected');

    link.insert();
    const again = await reader.next();
    const version = await exchange(again, Uint8Array.from(Buffer.from('00fd000000', 'hex')));
    expect(Buffer.from(version)).toEqual(Buffer.of(0x6d, 0x00)); // a new power-up: nothing selected
  });

  it('reconnects by itself when the reader goes away (pcscd restarted)', async () => {
    const reader = await fakeReader();
    link = new VpcdLink({ card: await newCard(), port: reader.port });
    link.insert();
    const first = await reader.next();
    first.destroy();
    const second = await reader.next();
    expect(Buffer.from(await exchange(second, Uint8Array.of(4)))).toEqual(Buffer.from(ATR));
  });
});
