// Property tests: whatever bytes arrive, the parsers throw only their typed errors and return quickly.
import { decode } from 'cbor2';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CborError, decodeCtap, encodeCtap } from './cbor';
import type { CtapValue } from './cbor';
import {
  CTAPHID_CMD,
  CtaphidError,
  fragmentMessage,
  MessageAssembler,
  parseInitResponse,
  parseKeepalive,
} from './ctaphid';
import {
  Ctap2Error,
  parseAuthenticatorData,
  parseGetAssertionResponse,
  parseGetInfoResponse,
  parseMakeCredentialResponse,
  parsePinRetriesResponse,
  parseRequest,
} from './ctap2';

const RUN = { numRuns: 300, interruptAfterTimeLimit: 1_500 };

function onlyTyped(fn: () => unknown, ...types: (abstract new (...args: never[]) => Error)[]): void {
  try {
    fn();
  } catch (error) {
    if (!types.some((t) => error instanceof t)) throw error;
  }
}

/** Reports that look like CTAPHID: mostly one or two channels, with mutated headers. */
const report = fc.oneof(
  fc.uint8Array({ minLength: 64, maxLength: 64 }),
  fc.uint8Array({ minLength: 0, maxLength: 70 }),
  fc
    .record({
      cid: fc.constantFrom(1, 2, 0xffffffff),
      cmd: fc.constantFrom(CTAPHID_CMD.CBOR, CTAPHID_CMD.INIT, CTAPHID_CMD.KEEPALIVE),
      payload: fc.uint8Array({ maxLength: 300 }),
      mutateAt: fc.nat(6),
      mutation: fc.integer({ min: 0, max: 255 }),
    })
    .chain(({ cid, cmd, payload, mutateAt, mutation }) => {
      const reports = fragmentMessage(cid, cmd, payload);
      return fc.nat(reports.length - 1).map((i) => {
        const copy = reports[i]!.slice();
        copy[mutateAt] = mutation;
        return copy;
      });
    }),
);

/** CBOR-shaped bytes: valid encodings, then truncated, extended or corrupted. */
const ctapValue: fc.Arbitrary<CtapValue> = fc.letrec<{ value: CtapValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer(),
    fc.string({ maxLength: 8 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(
        fc.tuple(fc.oneof(fc.integer({ min: -30, max: 300 }), fc.string({ maxLength: 4 })), tie('value')),
        {
          maxLength: 5,
        },
      )
      .map((entries) => new Map(entries)),
  ),
})).value;

const cborish = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.tuple(ctapValue, fc.nat(), fc.nat(255), fc.nat()).map(([value, cut, byte, at]) => {
    let bytes: Uint8Array;
    try {
      bytes = encodeCtap(value);
    } catch {
      return Uint8Array.of(byte);
    }
    const corrupted = bytes.slice(0, Math.max(1, bytes.length - (cut % 4)));
    const i = at % corrupted.length;
    corrupted[i] = (corrupted[i] ?? 0) ^ byte;
    return corrupted;
  }),
);

function containsFloat(bytes: Uint8Array): boolean {
  try {
    decode(bytes, { rejectFloats: true });
    return false;
  } catch {
    return true;
  }
}

describe('parsers on arbitrary input', () => {
  it('the assembler throws only CtaphidError and stays usable', () => {
    fc.assert(
      fc.property(fc.array(report, { maxLength: 40 }), fc.option(fc.constantFrom(1, 2)), (reports, cid) => {
        const assembler = new MessageAssembler(cid === null ? {} : { cid });
        for (const r of reports) onlyTyped(() => assembler.push(r), CtaphidError);
        // After any sequence a well-formed message still assembles, once a fresh one starts.
        assembler.reset();
        const payload = Uint8Array.of(1, 2, 3);
        const message = fragmentMessage(cid ?? 1, CTAPHID_CMD.PING, payload)
          .map((r) => assembler.push(r))
          .at(-1);
        expect(message?.payload).toEqual(payload);
      }),
      RUN,
    );
  });

  it('INIT and KEEPALIVE parsers throw only CtaphidError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.uint8Array({ maxLength: 30 }),
        (nonce, payload) => {
          onlyTyped(() => parseInitResponse(nonce, payload), CtaphidError);
          onlyTyped(() => parseKeepalive(payload), CtaphidError);
        },
      ),
      RUN,
    );
  });

  it('decodeCtap throws only CborError, and what it accepts re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(cborish, (bytes) => {
        let value: CtapValue | undefined;
        onlyTyped(() => (value = decodeCtap(bytes)), CborError);
        // Canonical means one encoding per value: whatever we accept, we would have written the same
        // way. Floats are the exception (CTAP leaves their representation as sent; we never write them).
        if (value !== undefined && !containsFloat(bytes)) {
          expect(Buffer.from(encodeCtap(value))).toEqual(Buffer.from(bytes));
        }
      }),
      RUN,
    );
  });

  it('CTAP2 response and request parsers throw only Ctap2Error or CborError', () => {
    const parsers = [
      parseGetInfoResponse,
      parseMakeCredentialResponse,
      parseGetAssertionResponse,
      parsePinRetriesResponse,
      parseAuthenticatorData,
    ];
    fc.assert(
      fc.property(fc.constantFrom(0, 0x31), cborish, (status, body) => {
        const response = Uint8Array.from([status, ...body]);
        for (const parse of parsers) onlyTyped(() => parse(response), Ctap2Error);
        onlyTyped(
          () => parseAuthenticatorData(Uint8Array.from([...new Uint8Array(32), 0xc5, 0, 0, 0, 1, ...body])),
          Ctap2Error,
        );
        onlyTyped(() => parseRequest(response), CborError);
      }),
      RUN,
    );
  });
});
