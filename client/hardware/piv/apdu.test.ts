import { describe, expect, it } from 'vitest';
import type { CommandApdu, Transmit } from './apdu';
import {
  MAX_GET_RESPONSE_ROUNDS,
  chainCommand,
  checkStatus,
  encodeCommandApdu,
  exchange,
  parseResponseApdu,
  statusError,
} from './apdu';
import type { PivErrorReason } from './errors';
import { PivError } from './errors';
import { expectReason, h, toHex } from './test-bytes.test-support';

/** A transmit that expects exactly these commands (hex) and answers each with the paired response. */
function scripted(pairs: [string, string][]): Transmit & { sent: string[] } {
  const sent: string[] = [];
  const fn = async (command: Uint8Array) => {
    const next = pairs[sent.length];
    sent.push(toHex(command));
    if (!next) throw new Error(`unexpected command ${toHex(command)}`);
    expect(toHex(command)).toBe(next[0].replace(/\s+/g, '').toUpperCase());
    return h(next[1]);
  };
  return Object.assign(fn, { sent });
}

describe('command APDU encoding', () => {
  it('encodes the four short cases', () => {
    expect(toHex(encodeCommandApdu({ cla: 0, ins: 0x20, p1: 0, p2: 0x80 }))).toBe('00200080');
    expect(toHex(encodeCommandApdu({ cla: 0, ins: 0xfd, p1: 0, p2: 0, le: 256 }))).toBe('00FD000000');
    expect(toHex(encodeCommandApdu({ cla: 0, ins: 0xfd, p1: 0, p2: 0, le: 3 }))).toBe('00FD000003');
    expect(toHex(encodeCommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0, data: h('A000000308') }))).toBe(
      '00A4040005A000000308',
    );
    expect(
      toHex(encodeCommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0, data: h('A000000308'), le: 256 })),
    ).toBe('00A4040005A00000030800');
  });

  it('encodes extended Lc and Le (ISO 7816-4 §5.1)', () => {
    const data = new Uint8Array(300).fill(0xab);
    const case4 = encodeCommandApdu(
      { cla: 0, ins: 0xdb, p1: 0x3f, p2: 0xff, data, le: 65536 },
      { extended: true },
    );
    expect(toHex(case4.subarray(0, 7))).toBe('00DB3FFF00012C');
    expect(toHex(case4.subarray(-2))).toBe('0000');
    expect(case4.length).toBe(4 + 3 + 300 + 2);
    const case2 = encodeCommandApdu({ cla: 0, ins: 0xcb, p1: 0x3f, p2: 0xff, le: 1000 }, { extended: true });
    expect(toHex(case2)).toBe('00CB3FFF0003E8');
  });

  it('refuses data or Le that a short APDU cannot carry, and bytes out of range', () => {
    expectReason(
      () => encodeCommandApdu({ cla: 0, ins: 0, p1: 0, p2: 0, data: new Uint8Array(256) }),
      'INVALID_ARGUMENT',
    );
    expectReason(() => encodeCommandApdu({ cla: 0, ins: 0, p1: 0, p2: 0, le: 257 }), 'INVALID_ARGUMENT');
    expectReason(() => encodeCommandApdu({ cla: 0, ins: 0, p1: 0, p2: 0, le: 0 }), 'INVALID_ARGUMENT');
    expectReason(() => encodeCommandApdu({ cla: 0x100, ins: 0, p1: 0, p2: 0 }), 'INVALID_ARGUMENT');
  });

  it('chains long data with CLA 0x10 on every part but the last, Le only on the last', () => {
    const data = Uint8Array.from({ length: 600 }, (_, i) => i & 0xff);
    const parts = chainCommand({ cla: 0, ins: 0xdb, p1: 0x3f, p2: 0xff, data, le: 256 });
    expect(parts.map((p) => [p.cla, p.data?.length, p.le])).toEqual([
      [0x10, 255, undefined],
      [0x10, 255, undefined],
      [0x00, 90, 256],
    ]);
    expect(Buffer.concat(parts.map((p) => p.data!))).toEqual(Buffer.from(data));
    const short: CommandApdu = { cla: 0, ins: 0x20, p1: 0, p2: 0x80, data: new Uint8Array(8) };
    expect(chainCommand(short)).toEqual([short]);
  });
});

describe('response APDU parsing', () => {
  it('splits data from SW1SW2', () => {
    expect(parseResponseApdu(h('0102 9000'))).toEqual({ data: h('0102'), sw: 0x9000 });
    expect(parseResponseApdu(h('6982'))).toEqual({ data: h(''), sw: 0x6982 });
  });

  it('refuses an answer without a status word', () => {
    expectReason(() => parseResponseApdu(h('')), 'MALFORMED_RESPONSE');
    expectReason(() => parseResponseApdu(h('90')), 'MALFORMED_RESPONSE');
  });
});

describe('exchange', () => {
  it('gathers a long answer over GET RESPONSE while the card says 61xx', async () => {
    const transmit = scripted([
      ['00CB3FFF055C035FC10500', 'AAAA 6104'],
      ['00C0000004', 'BBBBBBBB 6100'],
      ['00C0000000', 'CC 9000'],
    ]);
    const answer = await exchange(transmit, {
      cla: 0,
      ins: 0xcb,
      p1: 0x3f,
      p2: 0xff,
      data: h('5C035FC105'),
      le: 256,
    });
    expect(answer).toEqual({ data: h('AAAA BBBBBBBB CC'), sw: 0x9000 });
  });

  it('sends a chain and stops at the first part the card refuses', async () => {
    const data = new Uint8Array(300);
    const ok = scripted([
      [`10DB3FFFFF${'00'.repeat(255)}`, '9000'],
      [`00DB3FFF2D${'00'.repeat(45)}`, '9000'],
    ]);
    expect(await exchange(ok, { cla: 0, ins: 0xdb, p1: 0x3f, p2: 0xff, data })).toEqual({
      data: h(''),
      sw: 0x9000,
    });
    const refused = scripted([[`10DB3FFFFF${'00'.repeat(255)}`, '6982']]);
    expect((await exchange(refused, { cla: 0, ins: 0xdb, p1: 0x3f, p2: 0xff, data })).sw).toBe(0x6982);
    expect(refused.sent.length).toBe(1);
  });

  it('sends the command again with the Le the card asks for on 6Cxx, once', async () => {
    const transmit = scripted([
      ['00FD000000', '6C03'],
      ['00FD000003', '050403 9000'],
    ]);
    expect(await exchange(transmit, { cla: 0, ins: 0xfd, p1: 0, p2: 0, le: 256 })).toEqual({
      data: h('050403'),
      sw: 0x9000,
    });
    const stubborn = scripted([
      ['00FD000000', '6C03'],
      ['00FD000003', '6C03'],
    ]);
    expect((await exchange(stubborn, { cla: 0, ins: 0xfd, p1: 0, p2: 0, le: 256 })).sw).toBe(0x6c03);
  });

  it('gives up on a card that answers 61xx for ever', async () => {
    let calls = 0;
    const endless: Transmit = async () => {
      calls++;
      return h('6101');
    };
    const error = await exchange(endless, { cla: 0, ins: 0xcb, p1: 0, p2: 0, le: 256 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PivError);
    expect((error as PivError).reason).toBe('MALFORMED_RESPONSE');
    expect(calls).toBe(MAX_GET_RESPONSE_ROUNDS + 1);
  });

  it('gives up on an answer longer than 64 KiB', async () => {
    const big: Transmit = async () => Uint8Array.from([...new Uint8Array(256), 0x61, 0x00]);
    const error = await exchange(big, { cla: 0, ins: 0xcb, p1: 0, p2: 0, le: 256 }).catch((e: unknown) => e);
    expect((error as PivError).reason).toBe('MALFORMED_RESPONSE');
  });

  it('counts the APDUs it sends', async () => {
    let count = 0;
    const transmit = scripted([
      ['00CB3FFF00', '01 6101'],
      ['00C0000001', '02 9000'],
    ]);
    await exchange(transmit, { cla: 0, ins: 0xcb, p1: 0x3f, p2: 0xff, le: 256 }, { onApdu: () => count++ });
    expect(count).toBe(2);
  });
});

describe('status words', () => {
  const table: [number, PivErrorReason, string][] = [
    [0x6982, 'SECURITY_STATUS_NOT_SATISFIED', 'ACCESS_DENIED'],
    [0x6983, 'PIN_BLOCKED', 'LOCKED'],
    [0x63c0, 'PIN_BLOCKED', 'LOCKED'],
    [0x63c2, 'PIN_INCORRECT', 'MFA_FAILED'],
    [0x6a82, 'NOT_FOUND', 'NOT_FOUND'],
    [0x6a88, 'REFERENCE_NOT_FOUND', 'NOT_FOUND'],
    [0x6a80, 'INCORRECT_DATA', 'INVALID_ARGUMENT'],
    [0x6700, 'WRONG_LENGTH', 'INVALID_ARGUMENT'],
    [0x6a86, 'INCORRECT_P1P2', 'INVALID_ARGUMENT'],
    [0x6b00, 'INCORRECT_P1P2', 'INVALID_ARGUMENT'],
    [0x6d00, 'INS_NOT_SUPPORTED', 'PRECONDITION_FAILED'],
    [0x6e00, 'CLA_NOT_SUPPORTED', 'PRECONDITION_FAILED'],
    [0x6a81, 'FUNCTION_NOT_SUPPORTED', 'PRECONDITION_FAILED'],
    [0x6985, 'CONDITIONS_NOT_SATISFIED', 'PRECONDITION_FAILED'],
    [0x6a84, 'NOT_ENOUGH_MEMORY', 'RESOURCE_EXHAUSTED'],
    [0x6883, 'LAST_COMMAND_EXPECTED', 'INTERNAL'],
    [0x6884, 'CHAINING_NOT_SUPPORTED', 'PRECONDITION_FAILED'],
    [0x6581, 'MEMORY_FAILURE', 'INTERNAL'],
    [0x6f00, 'NO_PRECISE_DIAGNOSIS', 'INTERNAL'],
    [0x6999, 'UNKNOWN_STATUS', 'INTERNAL'],
  ];

  it.each(table)('maps %s to %s (%s) and keeps the SW', (sw, reason, code) => {
    const error = statusError(sw, { operation: 'sign with slot 9a' });
    expect(error).toBeInstanceOf(PivError);
    expect(error.reason).toBe(reason);
    expect(error.code).toBe(code);
    expect(error.sw).toBe(sw);
  });

  it('tells the PIN attempts left, in the error and in its message', () => {
    const three = statusError(0x63c3, { operation: 'verify the PIN', credential: 'PIN' });
    expect(three.retriesLeft).toBe(3);
    expect(three.message).toContain('3 attempts left');
    expect(statusError(0x63c1, { operation: 'verify the PIN' }).message).toContain('1 attempt left');
  });

  it('speaks of the PUK where the command checks the PUK', () => {
    expect(statusError(0x63c2, { operation: 'unblock the PIN', credential: 'PUK' })).toMatchObject({
      reason: 'PUK_INCORRECT',
      retriesLeft: 2,
    });
    expect(statusError(0x6983, { operation: 'unblock the PIN', credential: 'PUK' }).reason).toBe(
      'PUK_BLOCKED',
    );
  });

  it('says how to unblock a blocked PIN', () => {
    expect(statusError(0x6983, { operation: 'verify the PIN' }).message).toMatch(/PUK/);
  });

  it('reads 6A82 to SELECT as a card without a PIV application', () => {
    expect(statusError(0x6a82, { operation: 'select', select: true }).reason).toBe('APPLET_NOT_FOUND');
  });

  it('checkStatus returns the data on 9000 and throws the typed error otherwise', () => {
    expect(checkStatus({ data: h('01'), sw: 0x9000 }, { operation: 'x' })).toEqual(h('01'));
    expectReason(
      () => checkStatus({ data: h(''), sw: 0x6982 }, { operation: 'x' }),
      'SECURITY_STATUS_NOT_SATISFIED',
    );
  });
});
