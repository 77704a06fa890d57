import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TpmFormatError } from './errors';
import { TpmReader, TpmWriter } from './marshal';

describe('TPM marshalling', () => {
  it('round-trips integers and TPM2Bs big-endian', () => {
    const bytes = new TpmWriter()
      .u8(0xab)
      .u16(0x1234)
      .u32(0xdeadbeef)
      .u64(0x0102030405060708n)
      .tpm2b(Uint8Array.of(1, 2, 3))
      .finish();
    expect(Buffer.from(bytes).toString('hex')).toBe('ab1234deadbeef01020304050607080003010203');
    const r = new TpmReader(bytes, 'f');
    expect([r.u8('a'), r.u16('b'), r.u32('c'), r.u64('d')]).toEqual([
      0xab,
      0x1234,
      0xdeadbeef,
      0x0102030405060708n,
    ]);
    expect(r.tpm2b(3, 'e')).toEqual(Uint8Array.of(1, 2, 3));
    r.end('all');
  });

  it('refuses reads past the end, over-size TPM2Bs and trailing bytes with TpmFormatError + fieldPath', () => {
    const cases: ((r: TpmReader) => unknown)[] = [
      (r) => r.u64('x'),
      (r) => r.tpm2b(1, 'x'),
      (r) => r.bytes(5, 'x'),
      (r) => r.end('x'),
    ];
    for (const run of cases) {
      const r = new TpmReader(Uint8Array.of(0, 2, 9), 'ak_public');
      let thrown: unknown;
      try {
        run(r);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TpmFormatError);
      expect((thrown as TpmFormatError).code).toBe('INVALID_ARGUMENT');
      expect((thrown as TpmFormatError).fields.fieldPath).toBe('ak_public');
    }
  });

  it('a TPM2B shorter than its size is refused, not truncated', () => {
    expect(() => new TpmReader(Uint8Array.of(0, 4, 1, 2), 'f').tpm2b(64, 'x')).toThrow(TpmFormatError);
  });

  it('property: any sequence of reads on any bytes returns or throws only TpmFormatError', () => {
    const op = fc.constantFrom('u8', 'u16', 'u32', 'u64', 'tpm2b', 'bytes', 'end');
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.array(op, { maxLength: 20 }),
        fc.nat(70),
        (bytes, ops, n) => {
          const r = new TpmReader(bytes, 'f');
          try {
            for (const o of ops) {
              if (o === 'tpm2b') r.tpm2b(n, 'x');
              else if (o === 'bytes') r.bytes(n, 'x');
              else if (o === 'end') r.end('x');
              else r[o]('x');
              expect(r.position).toBeLessThanOrEqual(bytes.length);
            }
          } catch (error) {
            if (!(error instanceof TpmFormatError)) throw error;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
