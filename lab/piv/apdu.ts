// Command and response APDUs (ISO/IEC 7816-4 §5.1): the four cases in short and extended form, parsed
// apart from any I/O so the card can be driven and fuzzed on bytes.

/** Status words the card answers with. NIST SP 800-73-4 Part 2 §3 lists which command uses which. */
export const SW = {
  OK: 0x9000,
  /** 61xx: xx more bytes (00: 256 or more) wait for GET RESPONSE. */
  MORE_DATA: 0x6100,
  /** 63Cx: verification failed, x tries left. */
  VERIFY_FAILED: 0x63c0,
  WRONG_LENGTH: 0x6700,
  LAST_COMMAND_EXPECTED: 0x6883,
  SECURITY_STATUS_NOT_SATISFIED: 0x6982,
  AUTH_METHOD_BLOCKED: 0x6983,
  CONDITIONS_NOT_SATISFIED: 0x6985,
  INCORRECT_DATA: 0x6a80,
  FILE_NOT_FOUND: 0x6a82,
  NOT_ENOUGH_MEMORY: 0x6a84,
  INCORRECT_P1P2: 0x6a86,
  REFERENCE_NOT_FOUND: 0x6a88,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  UNKNOWN: 0x6f00,
} as const;

export class ApduFormatError extends Error {
  override name = 'ApduFormatError';
}

export interface CommandApdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data: Uint8Array;
  /** Ne, the most response bytes the reader takes: undefined when the command carries no Le. */
  le: number | undefined;
  extended: boolean;
}

/** A handler's answer before the card splits it for GET RESPONSE. */
export interface CardResponse {
  data: Uint8Array;
  sw: number;
}

export function status(sw: number, data: Uint8Array = new Uint8Array(0)): CardResponse {
  return { data, sw };
}

export function ok(data: Uint8Array = new Uint8Array(0)): CardResponse {
  return { data, sw: SW.OK };
}

export function retriesLeft(n: number): CardResponse {
  return status(SW.VERIFY_FAILED | Math.min(n, 15));
}

/** Parses a command APDU; throws ApduFormatError when Lc/Le do not account for every byte. */
export function parseCommandApdu(bytes: Uint8Array): CommandApdu {
  if (bytes.length < 4) throw new ApduFormatError('shorter than a header');
  const [cla, ins, p1, p2] = bytes as unknown as [number, number, number, number];
  const header = { cla, ins, p1, p2 };
  const none = new Uint8Array(0);
  if (bytes.length === 4) return { ...header, data: none, le: undefined, extended: false };
  const b4 = bytes[4] as number;
  if (bytes.length === 5) return { ...header, data: none, le: b4 === 0 ? 256 : b4, extended: false };
  if (b4 !== 0) {
    const lc = b4;
    const data = bytes.subarray(5, 5 + lc);
    if (bytes.length === 5 + lc) return { ...header, data, le: undefined, extended: false };
    if (bytes.length === 6 + lc) {
      const le = bytes[5 + lc] as number;
      return { ...header, data, le: le === 0 ? 256 : le, extended: false };
    }
    throw new ApduFormatError(`Lc ${lc} does not match the ${bytes.length - 5} bytes after it`);
  }
  // Extended length: a zero byte, then two bytes of Lc or of Le.
  if (bytes.length < 7) throw new ApduFormatError('truncated extended length');
  const n = ((bytes[5] as number) << 8) | (bytes[6] as number);
  if (bytes.length === 7) return { ...header, data: none, le: n === 0 ? 65536 : n, extended: true };
  if (n === 0) throw new ApduFormatError('extended Lc of zero');
  const data = bytes.subarray(7, 7 + n);
  if (bytes.length === 7 + n) return { ...header, data, le: undefined, extended: true };
  if (bytes.length === 9 + n) {
    const le = ((bytes[7 + n] as number) << 8) | (bytes[8 + n] as number);
    return { ...header, data, le: le === 0 ? 65536 : le, extended: true };
  }
  throw new ApduFormatError(`extended Lc ${n} does not match the ${bytes.length - 7} bytes after it`);
}

export function encodeResponseApdu(data: Uint8Array, sw: number): Uint8Array {
  const out = new Uint8Array(data.length + 2);
  out.set(data, 0);
  out[data.length] = (sw >> 8) & 0xff;
  out[data.length + 1] = sw & 0xff;
  return out;
}

/** Encodes a command APDU, short form when it fits (used by tests and by nothing on the card side). */
export function encodeCommandApdu(
  cla: number,
  ins: number,
  p1: number,
  p2: number,
  data: Uint8Array = new Uint8Array(0),
  le?: number,
): Uint8Array {
  const header = [cla, ins, p1, p2];
  const extended = data.length > 255 || (le !== undefined && le > 256);
  const lc = data.length === 0 ? [] : extended ? [0, data.length >> 8, data.length & 0xff] : [data.length];
  let leBytes: number[] = [];
  if (le !== undefined) {
    if (extended)
      leBytes = data.length === 0 ? [0, (le >> 8) & 0xff, le & 0xff] : [(le >> 8) & 0xff, le & 0xff];
    else leBytes = [le & 0xff];
  }
  return Uint8Array.from([...header, ...lc, ...data, ...leBytes]);
}
