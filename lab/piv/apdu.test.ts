import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ApduFormatError, encodeCommandApdu, parseCommandApdu } from './apdu';
import { harness } from './card.test-support';

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

describe('command APDUs', () => {
  it('reads the four cases in short form', () => {
    expect(parseCommandApdu(bytes('00a40400'))).toMatchObject({
      ins: 0xa4,
      le: undefined,
      data: new Uint8Array(0),
    });
    expect(parseCommandApdu(bytes('00fd000000'))).toMatchObject({ le: 256, extended: false });
    expect(parseCommandApdu(bytes('0020008008 3132333435 36ffff'))).toMatchObject({ le: undefined });
    expect(parseCommandApdu(bytes('00cb3fff05 5c035fc105 00'))).toMatchObject({
      le: 256,
      data: bytes('5c035fc105'),
    });
  });

  it('reads extended Lc and Le', () => {
    const data = new Uint8Array(300).fill(1);
    const parsed = parseCommandApdu(encodeCommandApdu(0, 0xdb, 0x3f, 0xff, data, 65536));
    expect(parsed).toMatchObject({ extended: true, le: 65536 });
    expect(parsed.data.length).toBe(300);
    expect(parseCommandApdu(bytes('00f9 9a00 000000'))).toMatchObject({ extended: true, le: 65536 });
  });

  it('refuses an Lc that does not account for the bytes', () => {
    expect(() => parseCommandApdu(bytes('002000800831'))).toThrow(ApduFormatError);
    expect(() => parseCommandApdu(bytes('0020'))).toThrow(ApduFormatError);
    expect(() => parseCommandApdu(bytes('00200080 0001'))).toThrow(ApduFormatError);
    expect(() => parseCommandApdu(bytes('00200080 000002 31'))).toThrow(ApduFormatError);
  });

  it('parses what it encodes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 700 }),
        fc.option(fc.integer({ min: 1, max: 65536 }), { nil: undefined }),
        (ins, p2, data, le) => {
          const parsed = parseCommandApdu(encodeCommandApdu(0x00, ins, 0x00, p2, data, le));
          expect(parsed.ins).toBe(ins);
          expect(parsed.p2).toBe(p2);
          expect(Buffer.from(parsed.data)).toEqual(Buffer.from(data));
          expect(parsed.le).toBe(le);
        },
      ),
    );
  });

  it('the card answers any byte string with a status word and never throws', async () => {
    const h = await harness();
    await h.select();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          // Well-framed APDUs of the instructions the card knows, with random parameters and data.
          fc
            .tuple(
              fc.constantFrom(0x00, 0x10),
              fc.constantFrom(
                0x20,
                0x24,
                0x2c,
                0x47,
                0x87,
                0xa4,
                0xc0,
                0xcb,
                0xdb,
                0xf7,
                0xf8,
                0xf9,
                0xfd,
                0xff,
              ),
              fc.integer({ min: 0, max: 255 }),
              fc.constantFrom(0x80, 0x81, 0x9a, 0x9b, 0x9c, 0xff, 0x00),
              fc.uint8Array({ maxLength: 80 }),
            )
            .map(([cla, ins, p1, p2, data]) => encodeCommandApdu(cla, ins, p1, p2, data)),
        ),
        async (apdu) => {
          const answer = await h.card.transmit(apdu);
          expect(answer.length).toBeGreaterThanOrEqual(2);
          const sw1 = answer[answer.length - 2] as number;
          expect([0x61, 0x63, 0x67, 0x68, 0x69, 0x6a, 0x6d, 0x6e, 0x90]).toContain(sw1);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
