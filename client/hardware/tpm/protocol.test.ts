// The helper's answers: typed results, typed errors, and nothing else whatever a line holds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../../proto/errors';
import {
  decodeResult,
  encodeRequest,
  HelperProtocolError,
  isTctiRc,
  parseAnswerLine,
  resultSpecs,
  toKeyportError,
} from './protocol';
import type { HelperOp } from './protocol';

const RUN = { numRuns: 300, interruptAfterTimeLimit: 1_500 };

function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(HelperProtocolError);
  }
}

describe('encodeRequest', () => {
  it('writes one line with the id and op, fields alongside', () => {
    const line = encodeRequest(7, 'quote', { nonce: 'AAE=', pcrs: [0, 1] });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({ id: 7, op: 'quote', nonce: 'AAE=', pcrs: [0, 1] });
  });

  it('never lets a field override the id or op', () => {
    expect(JSON.parse(encodeRequest(3, 'info', { id: 9, op: 'close' }))).toEqual({ id: 3, op: 'info' });
  });
});

describe('parseAnswerLine', () => {
  it('reads a success with its fields', () => {
    expect(parseAnswerLine('{"id":4,"ok":true,"cert_info":"AAEC"}')).toEqual({
      id: 4,
      ok: true,
      fields: { cert_info: 'AAEC' },
    });
  });

  it('reads an error with and without an RC', () => {
    expect(
      parseAnswerLine('{"id":5,"ok":false,"error":{"kind":"tpm","rc":2466,"message":"Quote failed"}}'),
    ).toEqual({ id: 5, ok: false, error: { kind: 'tpm', rc: 2466, message: 'Quote failed' } });
    expect(parseAnswerLine('{"id":null,"ok":false,"error":{"kind":"request","message":"bad"}}')).toEqual({
      id: null,
      ok: false,
      error: { kind: 'request', message: 'bad' },
    });
  });

  it.each([
    '',
    'garbage',
    '[]',
    'null',
    '{"ok":true}',
    '{"id":-1,"ok":true}',
    '{"id":1.5,"ok":true}',
    '{"id":"1","ok":true}',
    '{"id":1,"ok":"yes"}',
    '{"id":1,"ok":false}',
    '{"id":1,"ok":false,"error":{"kind":"weird","message":"x"}}',
    '{"id":1,"ok":false,"error":{"kind":"tpm","rc":-3,"message":"x"}}',
  ])('refuses %j', (line) => {
    expect(() => parseAnswerLine(line)).toThrow(HelperProtocolError);
  });

  it('refuses an over-long line before parsing it', () => {
    expect(() => parseAnswerLine(`{"id":1,"ok":true,"x":"${'A'.repeat(1024 * 1024)}"}`)).toThrow(
      HelperProtocolError,
    );
  });

  it('throws only HelperProtocolError, whatever the line (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (line) => onlyProtocolErrors(() => parseAnswerLine(line))),
      RUN,
    );
    fc.assert(
      fc.property(fc.json({ maxDepth: 3 }), (line) => onlyProtocolErrors(() => parseAnswerLine(line))),
      RUN,
    );
  });

  it('decodes any answer-shaped object to a result or a typed error (property)', () => {
    const ops = Object.keys(resultSpecs) as HelperOp[];
    const field = fc.oneof(fc.string(), fc.base64String(), fc.integer(), fc.constant(null), fc.boolean());
    fc.assert(
      fc.property(
        fc.constantFrom(...ops),
        fc.dictionary(
          fc.constantFrom(
            'public',
            'name',
            'handle',
            'certificate',
            'attest',
            'signature',
            'cert_info',
            'tcti',
          ),
          field,
        ),
        (op, fields) => {
          const line = JSON.stringify({ id: 1, ok: true, ...fields });
          onlyProtocolErrors(() => {
            const answer = parseAnswerLine(line);
            if (answer.ok) decodeResult(op, answer.fields);
          });
        },
      ),
      RUN,
    );
  });
});

describe('decodeResult', () => {
  it('decodes base64 fields to bytes', () => {
    const ak = decodeResult('load_ak', { public: 'AAEC', name: 'AAs=', handle: 0x81004b50 });
    expect(ak.public).toEqual(new Uint8Array([0, 1, 2]));
    expect(ak.name).toEqual(new Uint8Array([0, 0x0b]));
    expect(ak.handle).toBe(0x81004b50);
    expect(decodeResult('ek', { public: 'AAEC' }).certificate).toBeUndefined();
  });

  it('refuses lenient or wrong base64 and handles outside the persistent range', () => {
    expect(() => decodeResult('activate', { cert_info: 'AAE' })).toThrow(HelperProtocolError);
    expect(() => decodeResult('activate', { cert_info: 'AA-_' })).toThrow(HelperProtocolError);
    expect(() => decodeResult('activate', { cert_info: 'AA E' })).toThrow(HelperProtocolError);
    expect(() => decodeResult('load_ak', { public: 'AAEC', name: 'AAs=', handle: 0x80000001 })).toThrow(
      HelperProtocolError,
    );
    expect(() => decodeResult('quote', { attest: 'AAEC' })).toThrow(HelperProtocolError);
  });
});

describe('toKeyportError', () => {
  const tcti = 'swtpm:host=127.0.0.1,port=1';

  it('a TCTI failure is UNAVAILABLE and names the TPM', () => {
    expect(isTctiRc(0xa000a)).toBe(true);
    expect(isTctiRc(0x18b)).toBe(false);
    const error = toKeyportError({ kind: 'tpm', rc: 0xa000a, message: 'IO failure' }, tcti);
    expect(error).toBeInstanceOf(KeyportError);
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toContain(`No TPM at ${tcti}`);
  });

  it('a TPM refusal is PRECONDITION_FAILED with its decoded RC', () => {
    const error = toKeyportError(
      { kind: 'tpm', rc: 0x98f, message: 'tpm:session(1):integrity check failed' },
      tcti,
    );
    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.message).toContain('integrity check failed');
  });

  it('request and internal errors are INTERNAL; not_found is NOT_FOUND', () => {
    expect(toKeyportError({ kind: 'request', message: 'x' }, tcti).code).toBe('INTERNAL');
    expect(toKeyportError({ kind: 'internal', message: 'x' }, tcti).code).toBe('INTERNAL');
    expect(toKeyportError({ kind: 'not_found', message: 'x' }, tcti).code).toBe('NOT_FOUND');
  });
});
