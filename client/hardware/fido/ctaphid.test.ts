import { describe, expect, it } from 'vitest';
import {
  BROADCAST_CID,
  CTAPHID_CAPABILITY,
  CTAPHID_CMD,
  CTAPHID_ERR,
  CtaphidError,
  deviceError,
  encodeInitResponse,
  fragmentMessage,
  MAX_MESSAGE_SIZE,
  MessageAssembler,
  parseInitResponse,
  parseKeepalive,
} from './ctaphid';

const CID = 0x01020304;

function bytes(length: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CtaphidError);
    return (error as CtaphidError).code;
  }
  return undefined;
}

describe('CTAPHID framing', () => {
  it('lays out the init packet as CID | CMD|0x80 | BCNT | 57 data bytes, zero padded', () => {
    const [report, ...rest] = fragmentMessage(CID, CTAPHID_CMD.CBOR, Uint8Array.of(0x04));
    expect(rest).toHaveLength(0);
    expect(report).toHaveLength(64);
    expect([...report!.subarray(0, 8)]).toEqual([0x01, 0x02, 0x03, 0x04, 0x90, 0x00, 0x01, 0x04]);
    expect(report!.subarray(8).every((b) => b === 0)).toBe(true);
  });

  it('numbers continuation packets from SEQ 0 with 59 data bytes each', () => {
    const payload = bytes(57 + 59 + 1);
    const reports = fragmentMessage(CID, CTAPHID_CMD.MSG, payload);
    expect(reports).toHaveLength(3);
    expect(reports[1]![4]).toBe(0);
    expect(reports[2]![4]).toBe(1);
    expect(reports[1]!.subarray(5)).toEqual(payload.subarray(57, 116));
    expect(reports[2]![5]).toBe(payload[116]);
    expect(reports[2]!.subarray(6).every((b) => b === 0)).toBe(true);
  });

  it('round-trips messages of every boundary size up to 7609 bytes', () => {
    for (const size of [0, 1, 57, 58, 116, 117, 1000, MAX_MESSAGE_SIZE]) {
      const payload = bytes(size, size);
      const reports = fragmentMessage(CID, CTAPHID_CMD.CBOR, payload);
      const assembler = new MessageAssembler({ cid: CID });
      reports.slice(0, -1).forEach((r) => expect(assembler.push(r)).toBeUndefined());
      expect(assembler.push(reports.at(-1)!)).toEqual({ cid: CID, cmd: CTAPHID_CMD.CBOR, payload });
      expect(assembler.inProgress).toBe(false);
    }
    expect(fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(MAX_MESSAGE_SIZE))).toHaveLength(129);
  });

  it('refuses to fragment a message larger than 7609 bytes', () => {
    expect(codeOf(() => fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(MAX_MESSAGE_SIZE + 1)))).toBe(
      'INVALID_LENGTH',
    );
  });

  it('rejects a packet on a wrong CID and keeps the message in progress', () => {
    const reports = fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(100));
    const stray = fragmentMessage(0x0a0b0c0d, CTAPHID_CMD.CBOR, bytes(100));
    const assembler = new MessageAssembler({ cid: CID });
    expect(assembler.push(reports[0]!)).toBeUndefined();
    expect(codeOf(() => assembler.push(stray[1]!))).toBe('INVALID_CHANNEL');
    expect(codeOf(() => assembler.push(stray[0]!))).toBe('INVALID_CHANNEL');
    expect(assembler.push(reports[1]!)?.payload).toEqual(bytes(100));
  });

  it('rejects a sequence gap and drops the partial message', () => {
    const reports = fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(300));
    const assembler = new MessageAssembler({ cid: CID });
    assembler.push(reports[0]!);
    assembler.push(reports[1]!);
    expect(codeOf(() => assembler.push(reports[3]!))).toBe('INVALID_SEQ');
    expect(assembler.inProgress).toBe(false);
    expect(codeOf(() => assembler.push(reports[2]!))).toBe('UNEXPECTED_CONTINUATION');
  });

  it('rejects an init packet announcing more than 7609 bytes', () => {
    const report = fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(10))[0]!;
    new DataView(report.buffer).setUint16(5, MAX_MESSAGE_SIZE + 1);
    expect(codeOf(() => new MessageAssembler({ cid: CID }).push(report))).toBe('INVALID_LENGTH');
  });

  it('rejects a truncated final packet and still waits for the real one', () => {
    const reports = fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(100));
    const assembler = new MessageAssembler({ cid: CID });
    assembler.push(reports[0]!);
    expect(codeOf(() => assembler.push(reports[1]!.subarray(0, 40)))).toBe('INVALID_PACKET_SIZE');
    expect(assembler.inProgress).toBe(true);
    expect(assembler.push(reports[1]!)?.payload).toEqual(bytes(100));
  });

  it('rejects a report with a report-ID byte prepended (65 bytes)', () => {
    const report = new Uint8Array(65);
    report.set(fragmentMessage(CID, CTAPHID_CMD.PING, bytes(3))[0]!, 1);
    expect(codeOf(() => new MessageAssembler().push(report))).toBe('INVALID_PACKET_SIZE');
  });

  it('rejects a continuation packet without an init packet', () => {
    const reports = fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(100));
    expect(codeOf(() => new MessageAssembler({ cid: CID }).push(reports[1]!))).toBe(
      'UNEXPECTED_CONTINUATION',
    );
  });

  it('rejects the reserved channel 0', () => {
    expect(
      codeOf(() => new MessageAssembler().push(fragmentMessage(0, CTAPHID_CMD.PING, bytes(1))[0]!)),
    ).toBe('INVALID_CHANNEL');
  });

  it('serves an authenticator: follows the first channel and reports CHANNEL_BUSY to another', () => {
    const assembler = new MessageAssembler();
    const mine = fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(100));
    const other = fragmentMessage(0x55667788, CTAPHID_CMD.CBOR, bytes(5));
    assembler.push(mine[0]!);
    expect(assembler.activeCid).toBe(CID);
    let busy: CtaphidError | undefined;
    try {
      assembler.push(other[0]!);
    } catch (error) {
      busy = error as CtaphidError;
    }
    expect(busy?.code).toBe('CHANNEL_BUSY');
    expect(busy?.details.cid).toBe(0x55667788);
    expect(assembler.push(mine[1]!)?.cid).toBe(CID);
    expect(assembler.push(other[0]!)?.cid).toBe(0x55667788);
  });

  it('lets INIT resynchronise a channel in the middle of a message', () => {
    const assembler = new MessageAssembler();
    assembler.push(fragmentMessage(CID, CTAPHID_CMD.CBOR, bytes(100))[0]!);
    const init = assembler.push(fragmentMessage(CID, CTAPHID_CMD.INIT, bytes(8))[0]!);
    expect(init?.cmd).toBe(CTAPHID_CMD.INIT);
    expect(assembler.inProgress).toBe(false);
  });
});

describe('CTAPHID INIT, KEEPALIVE and ERROR', () => {
  const nonce = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);

  it('parses the 17-byte INIT response', () => {
    const payload = encodeInitResponse({
      nonce,
      cid: CID,
      deviceVersion: { major: 5, minor: 4, build: 3 },
      capabilities: CTAPHID_CAPABILITY.WINK | CTAPHID_CAPABILITY.CBOR | CTAPHID_CAPABILITY.NMSG,
    });
    expect(payload).toHaveLength(17);
    expect(parseInitResponse(nonce, payload)).toEqual({
      cid: CID,
      protocolVersion: 2,
      deviceVersion: { major: 5, minor: 4, build: 3 },
      capabilities: 0x0d,
      wink: true,
      cbor: true,
      nmsg: true,
    });
  });

  it('rejects an INIT response echoing another nonce', () => {
    const payload = encodeInitResponse({
      nonce: Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9),
      cid: CID,
      capabilities: 4,
    });
    expect(codeOf(() => parseInitResponse(nonce, payload))).toBe('INIT_NONCE_MISMATCH');
  });

  it('rejects a short INIT response and one assigning the broadcast channel', () => {
    expect(codeOf(() => parseInitResponse(nonce, nonce))).toBe('INVALID_INIT_RESPONSE');
    const payload = encodeInitResponse({ nonce, cid: BROADCAST_CID, capabilities: 4 });
    expect(codeOf(() => parseInitResponse(nonce, payload))).toBe('INVALID_INIT_RESPONSE');
  });

  it('reads KEEPALIVE status 1 as processing and 2 as user presence needed', () => {
    expect(parseKeepalive(Uint8Array.of(1))).toBe('processing');
    expect(parseKeepalive(Uint8Array.of(2))).toBe('user-presence-needed');
    expect(parseKeepalive(Uint8Array.of(9))).toBe('unknown');
    expect(codeOf(() => parseKeepalive(new Uint8Array(0)))).toBe('INVALID_KEEPALIVE');
  });

  it('maps CTAPHID_ERROR codes to typed errors', () => {
    expect(deviceError(Uint8Array.of(CTAPHID_ERR.CHANNEL_BUSY)).code).toBe('CHANNEL_BUSY');
    expect(deviceError(Uint8Array.of(CTAPHID_ERR.INVALID_SEQ)).code).toBe('INVALID_SEQ');
    expect(deviceError(Uint8Array.of(CTAPHID_ERR.INVALID_CMD)).code).toBe('INVALID_COMMAND');
    const other = deviceError(Uint8Array.of(0x7f));
    expect(other.code).toBe('DEVICE_ERROR');
    expect(other.details).toEqual({ source: 'device', deviceCode: 0x7f });
  });
});
