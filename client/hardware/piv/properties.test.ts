// Properties: whatever bytes a card sends, every parser returns a value or throws PivError (never a
// RangeError, a TypeError or an OpenSSL error), an exchange ends after a bounded number of APDUs, and
// what the encoders write decodes back to what went in.
import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Transmit } from './apdu';
import {
  MAX_GET_RESPONSE_ROUNDS,
  chainCommand,
  encodeCommandApdu,
  exchange,
  parseResponseApdu,
  statusError,
} from './apdu';
import {
  parseAttestation,
  parseGeneratedPublicKey,
  parseGetData,
  parseMetadata,
  parsePinStatus,
  parseSelect,
  parseSerial,
  parseSignature,
  parseVersion,
} from './commands';
import { PivError, pivErrorReasons } from './errors';
import { checkCardProof, parseWitness } from './management-key';
import { decodeCertificateObject, encodeCertificateObject } from './objects';
import { FIXTURE_CERT_DER } from './test-bytes.test-support';
import type { Tlv } from './tlv';
import { decodeTlvMap, decodeTlvs, encodeTlv, encodeTlvs } from './tlv';

const RUN = { numRuns: 1000 };

function onlyPivErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof PivError)) throw error;
  }
}

/** Tags as PIV writes them: one byte, 7F xx / 5F xx, and three-byte 5F C1 xx / 5F FF xx. */
const tag = fc.oneof(
  fc.integer({ min: 0x01, max: 0xfe }).filter((b) => (b & 0x1f) !== 0x1f),
  fc
    .record({ first: fc.constantFrom(0x5f, 0x7f, 0x9f, 0xbf), second: fc.integer({ min: 0x1f, max: 0x7f }) })
    .map(({ first, second }) => first * 256 + second),
  fc
    .record({ second: fc.integer({ min: 0x81, max: 0xff }), third: fc.integer({ min: 0, max: 0x7f }) })
    .map(({ second, third }) => 0x5f0000 + second * 256 + third),
);
const tlvList: fc.Arbitrary<Tlv[]> = fc.array(fc.record({ tag, value: fc.uint8Array({ maxLength: 300 }) }), {
  maxLength: 6,
});

type Mutation = { at: number; value: number } | { truncate: number };
const mutations = fc.array(
  fc.oneof(
    fc.record({ at: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x83, 0xff) }),
    fc.record({ truncate: fc.nat() }),
  ),
  { minLength: 1, maxLength: 3 },
);
function mutate(bytes: Uint8Array, changes: Mutation[]): Uint8Array {
  let out = Uint8Array.from(bytes);
  for (const change of changes) {
    if (out.length === 0) break;
    if ('truncate' in change) out = out.subarray(0, change.truncate % out.length);
    else out[change.at % out.length] = change.value;
  }
  return out;
}

const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const POINT = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }).subarray(-65));
const SIGNATURE = new Uint8Array(sign('sha256', Buffer.from('x'), privateKey));

/** Valid answers of each kind, for mutation. */
const VALID: Uint8Array[] = [
  encodeTlv(0x7f49, encodeTlv(0x86, POINT)),
  encodeTlv(0x7c, encodeTlv(0x82, SIGNATURE)),
  encodeTlv(0x7c, encodeTlv(0x80, new Uint8Array(8))),
  encodeTlv(0x53, encodeCertificateObject(FIXTURE_CERT_DER)),
  Uint8Array.from(Buffer.from('61114f0600001000010079074f05a000000308', 'hex')),
  FIXTURE_CERT_DER,
  Uint8Array.from([...Buffer.from('010111020202030301010443', 'hex'), ...encodeTlv(0x86, POINT)]),
];

const PARSERS: ((bytes: Uint8Array) => unknown)[] = [
  (b) => decodeTlvs(b),
  (b) => decodeTlvMap(b, [0x70, 0x71, 0xfe]),
  parseSelect,
  parseGeneratedPublicKey,
  parseSignature,
  parseGetData,
  (b) => decodeCertificateObject(parseGetData(b)),
  decodeCertificateObject,
  parseVersion,
  parseSerial,
  parseAttestation,
  (b) => parseWitness('tdes', b),
  (b) => parseWitness('aes192', b),
  (b) => checkCardProof(new Uint8Array(8), b),
  parseMetadata,
  (b) => parseResponseApdu(b),
  (b) => parsePinStatus(parseResponseApdu(b)),
];

describe('PIV parsers on any bytes', () => {
  it('return a value or throw PivError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        for (const parse of PARSERS) onlyPivErrors(() => parse(bytes));
      }),
      RUN,
    );
  });

  it('return a value or throw PivError on mutations of valid answers', () => {
    fc.assert(
      fc.property(fc.constantFrom(...VALID), mutations, (valid, changes) => {
        const bytes = mutate(valid, changes);
        for (const parse of PARSERS) onlyPivErrors(() => parse(bytes));
      }),
      RUN,
    );
  });

  it('map every status word to a PivError with a known reason', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.constantFrom('PIN' as const, 'PUK' as const),
        (sw, credential) => {
          const error = statusError(sw, { operation: 'test', credential });
          expect(error).toBeInstanceOf(PivError);
          expect(pivErrorReasons).toContain(error.reason);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('round trips', () => {
  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(tlvList, (items) => {
        const decoded = decodeTlvs(encodeTlvs(items));
        expect(decoded.map((t) => ({ tag: t.tag, value: Uint8Array.from(t.value) }))).toEqual(items);
      }),
      RUN,
    );
  });

  it('re-encodes whatever it decoded into bytes that decode the same', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        let decoded: Tlv[];
        try {
          decoded = decodeTlvs(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(PivError);
          return;
        }
        expect(decodeTlvs(encodeTlvs(decoded))).toEqual(decoded);
      }),
      RUN,
    );
  });

  it('chains any data into parts of at most 255 bytes that join back up', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.option(fc.integer({ min: 1, max: 256 }), { nil: undefined }),
        (data, le) => {
          const parts = chainCommand({ cla: 0, ins: 0xdb, p1: 0x3f, p2: 0xff, data, ...(le ? { le } : {}) });
          for (const part of parts) encodeCommandApdu(part);
          expect(Buffer.concat(parts.map((p) => p.data ?? new Uint8Array(0)))).toEqual(Buffer.from(data));
          expect(parts.slice(0, -1).every((p) => p.cla === 0x10 && p.le === undefined)).toBe(true);
          expect(parts[parts.length - 1]!.cla).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('exchange with any card', () => {
  it('ends with a response or a PivError after a bounded number of APDUs', async () => {
    const answer = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc
        .record({
          data: fc.uint8Array({ maxLength: 256 }),
          sw1: fc.constantFrom(0x61, 0x6c, 0x90, 0x63, 0x69),
          sw2: fc.integer({ min: 0, max: 255 }),
        })
        .map(({ data, sw1, sw2 }) => Uint8Array.from([...data, sw1, sw2])),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(answer, { minLength: 1, maxLength: 20 }),
        fc.uint8Array({ maxLength: 600 }),
        async (answers, data) => {
          let sent = 0;
          const transmit: Transmit = async () => answers[sent++ % answers.length]!;
          try {
            const response = await exchange(transmit, {
              cla: 0,
              ins: 0xdb,
              p1: 0x3f,
              p2: 0xff,
              data,
              le: 256,
            });
            expect(response.sw).toBeGreaterThanOrEqual(0);
          } catch (error) {
            expect(error).toBeInstanceOf(PivError);
          }
          expect(sent).toBeLessThanOrEqual(3 + 1 + MAX_GET_RESPONSE_ROUNDS + 1);
        },
      ),
      { numRuns: 300 },
    );
  });
});
