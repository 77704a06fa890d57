// The SSH agent protocol (draft-ietf-sshm-ssh-agent, formerly draft-miller-ssh-agent), the part keyport's
// agent speaks: framing, the requests a client sends, the answers keyport gives, and the wire encodings of
// keys and signatures (RFC 4251 §5, RFC 5656 §3.1, RFC 8709 §4 and §6, OpenSSH PROTOCOL.certkeys).
// Pure, bytes only, no I/O: whatever bytes arrive, every function here returns a value or throws
// AgentProtocolError, never a RangeError or a TypeError.
import { KeyportError } from '../../proto/errors';
import type { KeyportErrorCode } from '../../proto/errors';
import { concatBytes, sshString } from '../keystore/session-key';
import type { SessionKeyAlgorithm } from '../keystore/session-key';

/**
 * The longest message accepted, in either direction: OpenSSH's own agent and client bound theirs at 256 KiB
 * (AGENT_MAX_LEN, MAX_AGENT_REPLY_LEN). A real request is far smaller: a certificate plus at most a few KiB
 * of data to sign.
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** Message numbers (draft-ietf-sshm-ssh-agent §6.1). */
export const AgentMessage = {
  FAILURE: 5,
  SUCCESS: 6,
  REQUEST_IDENTITIES: 11,
  IDENTITIES_ANSWER: 12,
  SIGN_REQUEST: 13,
  SIGN_RESPONSE: 14,
  ADD_IDENTITY: 17,
  REMOVE_IDENTITY: 18,
  REMOVE_ALL_IDENTITIES: 19,
  ADD_SMARTCARD_KEY: 20,
  REMOVE_SMARTCARD_KEY: 21,
  LOCK: 22,
  UNLOCK: 23,
  ADD_ID_CONSTRAINED: 25,
  ADD_SMARTCARD_KEY_CONSTRAINED: 26,
  EXTENSION: 27,
  EXTENSION_FAILURE: 28,
  EXTENSION_RESPONSE: 29,
} as const;

/** Sign request flags (§3.6.1): they choose an RSA signature's hash, and mean nothing for P-256 or Ed25519. */
export const SignFlag = { RSA_SHA2_256: 0x02, RSA_SHA2_512: 0x04 } as const;

/**
 * The requests that would change what the agent holds (add, remove, lock). keyport's agent holds exactly
 * the current session's key, so it refuses them all. The legacy SSH-1 numbers (1, 3, 7, 8, 9, 24), which
 * no OpenSSH since 7.6 sends, are named so that a refusal of one says what it was.
 */
const KEY_MANAGEMENT_MESSAGES: Readonly<Record<number, string>> = {
  1: 'SSH_AGENTC_REQUEST_RSA_IDENTITIES',
  3: 'SSH_AGENTC_RSA_CHALLENGE',
  7: 'SSH_AGENTC_ADD_RSA_IDENTITY',
  8: 'SSH_AGENTC_REMOVE_RSA_IDENTITY',
  9: 'SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES',
  24: 'SSH_AGENTC_ADD_RSA_ID_CONSTRAINED',
  [AgentMessage.ADD_IDENTITY]: 'SSH_AGENTC_ADD_IDENTITY',
  [AgentMessage.REMOVE_IDENTITY]: 'SSH_AGENTC_REMOVE_IDENTITY',
  [AgentMessage.REMOVE_ALL_IDENTITIES]: 'SSH_AGENTC_REMOVE_ALL_IDENTITIES',
  [AgentMessage.ADD_SMARTCARD_KEY]: 'SSH_AGENTC_ADD_SMARTCARD_KEY',
  [AgentMessage.REMOVE_SMARTCARD_KEY]: 'SSH_AGENTC_REMOVE_SMARTCARD_KEY',
  [AgentMessage.LOCK]: 'SSH_AGENTC_LOCK',
  [AgentMessage.UNLOCK]: 'SSH_AGENTC_UNLOCK',
  [AgentMessage.ADD_ID_CONSTRAINED]: 'SSH_AGENTC_ADD_ID_CONSTRAINED',
  [AgentMessage.ADD_SMARTCARD_KEY_CONSTRAINED]: 'SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED',
};

export type AgentRequest =
  | { kind: 'request-identities' }
  | { kind: 'sign'; keyBlob: Uint8Array; data: Uint8Array; flags: number }
  /** OpenSSH's layout (PROTOCOL.agent): the name, then the extension's own bytes, not wrapped in a string. */
  | { kind: 'extension'; name: string; contents: Uint8Array }
  /** Add, remove, lock, unlock: its body is not parsed (an add carries a private key: it is never read). */
  | { kind: 'key-management'; type: number; name: string }
  | { kind: 'unknown'; type: number };

export const agentProtocolErrorReasons = [
  /** A frame's length is over MAX_MESSAGE_BYTES. */
  'FRAME_TOO_LARGE',
  /** A frame of length 0: a message has at least its type byte. */
  'EMPTY_MESSAGE',
  /** A field runs past the end of its message. */
  'TRUNCATED',
  /** Bytes after a message's last field. */
  'TRAILING_BYTES',
  /** A public key or certificate that is not one of ours (P-256 or Ed25519), or not well formed. */
  'MALFORMED_KEY',
  /** The signer's answer is not a DER ECDSA signature or a 64-byte Ed25519 one. */
  'MALFORMED_SIGNATURE',
] as const;
export type AgentProtocolErrorReason = (typeof agentProtocolErrorReasons)[number];

const codeOf: Record<AgentProtocolErrorReason, KeyportErrorCode> = {
  FRAME_TOO_LARGE: 'INVALID_ARGUMENT',
  EMPTY_MESSAGE: 'INVALID_ARGUMENT',
  TRUNCATED: 'INVALID_ARGUMENT',
  TRAILING_BYTES: 'INVALID_ARGUMENT',
  MALFORMED_KEY: 'INVALID_ARGUMENT',
  MALFORMED_SIGNATURE: 'INTERNAL',
};

/** Bytes that are not the agent protocol. The connection that sent them is closed; nothing else changes. */
export class AgentProtocolError extends KeyportError {
  constructor(
    readonly reason: AgentProtocolErrorReason,
    message: string,
  ) {
    super(codeOf[reason], message);
    this.name = 'AgentProtocolError';
  }
}

// ---------------------------------------------------------------------------------------------------
// RFC 4251 §5 data types

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/** Reads RFC 4251 fields from one message; every read is bounds-checked. */
class WireReader {
  private offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  byte(field: string): number {
    return this.take(1, field)[0] as number;
  }

  uint32(field: string): number {
    const b = this.take(4, field);
    return (
      (((b[0] as number) << 24) >>> 0) + ((b[1] as number) << 16) + ((b[2] as number) << 8) + (b[3] as number)
    );
  }

  string(field: string): Uint8Array {
    const length = this.uint32(`${field} length`);
    return this.take(length, field);
  }

  text(field: string): string {
    return utf8Decoder.decode(this.string(field));
  }

  rest(): Uint8Array {
    return this.take(this.remaining, 'rest');
  }

  end(): void {
    if (this.remaining !== 0) {
      throw new AgentProtocolError(
        'TRAILING_BYTES',
        `${this.remaining} bytes after the end of ${this.what}.`,
      );
    }
  }

  private take(length: number, field: string): Uint8Array {
    if (length > this.remaining) {
      throw new AgentProtocolError(
        'TRUNCATED',
        `${this.what} ends inside its ${field} (${length} bytes wanted, ${this.remaining} left).`,
      );
    }
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }
}

function uint32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

/**
 * RFC 4251 §5 "mpint" of a non-negative integer given as unsigned big-endian bytes: leading zero bytes
 * dropped, one 0x00 put back in front when the top bit is set (the value is two's complement), and zero
 * as the empty string.
 */
export function encodeMpint(unsignedBigEndian: Uint8Array): Uint8Array {
  let start = 0;
  while (start < unsignedBigEndian.length && unsignedBigEndian[start] === 0) start += 1;
  const magnitude = unsignedBigEndian.subarray(start);
  const body =
    magnitude.length > 0 && (magnitude[0] as number) & 0x80
      ? concatBytes([Uint8Array.of(0), magnitude])
      : magnitude;
  return sshString(body);
}

// ---------------------------------------------------------------------------------------------------
// Framing (§3): uint32 length, then the message (its type byte first)

export function frame(message: Uint8Array): Uint8Array {
  if (message.length === 0)
    throw new AgentProtocolError('EMPTY_MESSAGE', 'An agent message has a type byte.');
  if (message.length > MAX_MESSAGE_BYTES) {
    throw new AgentProtocolError(
      'FRAME_TOO_LARGE',
      `A message of ${message.length} bytes is over the limit.`,
    );
  }
  return concatBytes([uint32(message.length), message]);
}

/**
 * Splits a byte stream into messages, whatever the chunking. A length over the limit (or zero) is refused as
 * soon as its 4 bytes are in, before any of its body is buffered: at most one message is ever held.
 */
export class FrameDecoder {
  private buffer: Uint8Array = new Uint8Array(0);

  constructor(private readonly maxMessageBytes = MAX_MESSAGE_BYTES) {}

  /** The bytes held that are not yet a whole message. */
  get buffered(): number {
    return this.buffer.length;
  }

  /**
   * The messages `chunk` completes. Each is a copy, so the caller may wipe it, and may wipe `chunk` too: the
   * decoder keeps its own copy of an unfinished message, and wipes the copies it no longer needs (a refused
   * SSH_AGENTC_ADD_IDENTITY carries a private key).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const joined = this.buffer.length === 0 ? undefined : concatBytes([this.buffer, chunk]);
    this.buffer.fill(0);
    this.buffer = new Uint8Array(0);
    let bytes = joined ?? chunk;
    try {
      const messages: Uint8Array[] = [];
      for (;;) {
        if (bytes.length < 4) break;
        const length = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, false);
        if (length === 0) throw new AgentProtocolError('EMPTY_MESSAGE', 'A frame of length 0.');
        if (length > this.maxMessageBytes) {
          throw new AgentProtocolError(
            'FRAME_TOO_LARGE',
            `A frame of ${length} bytes is over the limit of ${this.maxMessageBytes}.`,
          );
        }
        if (bytes.length < 4 + length) break;
        // Copies (new Uint8Array of a view): Buffer's slice() would share the caller's memory.
        messages.push(new Uint8Array(bytes.subarray(4, 4 + length)));
        bytes = bytes.subarray(4 + length);
      }
      this.buffer = new Uint8Array(bytes);
      return messages;
    } finally {
      joined?.fill(0);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Requests

/** One request message (without its length). Unknown types are a value, not an error: they get FAILURE. */
export function parseRequest(message: Uint8Array): AgentRequest {
  const reader = new WireReader(message, 'the request');
  const type = reader.byte('type');
  switch (type) {
    case AgentMessage.REQUEST_IDENTITIES:
      reader.end();
      return { kind: 'request-identities' };
    case AgentMessage.SIGN_REQUEST: {
      const keyBlob = reader.string('key blob');
      const data = reader.string('data');
      const flags = reader.uint32('flags');
      reader.end();
      return { kind: 'sign', keyBlob, data, flags };
    }
    case AgentMessage.EXTENSION: {
      const name = reader.text('extension name');
      return { kind: 'extension', name, contents: reader.rest() };
    }
    default: {
      const name = KEY_MANAGEMENT_MESSAGES[type];
      return name ? { kind: 'key-management', type, name } : { kind: 'unknown', type };
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Answers

export interface EncodedIdentity {
  /** The public key or certificate, in its SSH wire encoding. */
  keyBlob: Uint8Array;
  comment: string;
}

/** SSH_AGENT_FAILURE: one byte. Also the answer to an extension the agent does not know (§3.8). */
export function encodeFailure(): Uint8Array {
  return Uint8Array.of(AgentMessage.FAILURE);
}

export function encodeIdentitiesAnswer(identities: readonly EncodedIdentity[]): Uint8Array {
  return concatBytes([
    Uint8Array.of(AgentMessage.IDENTITIES_ANSWER),
    uint32(identities.length),
    ...identities.flatMap((identity) => [sshString(identity.keyBlob), sshString(identity.comment)]),
  ]);
}

export function encodeSignResponse(signatureBlob: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(AgentMessage.SIGN_RESPONSE), sshString(signatureBlob)]);
}

export type AgentAnswer =
  | { kind: 'failure' }
  | { kind: 'success' }
  | { kind: 'extension-failure' }
  | { kind: 'identities'; identities: EncodedIdentity[] }
  | { kind: 'signature'; signatureBlob: Uint8Array }
  | { kind: 'unknown'; type: number };

/** An answer message, as a client reads it (for tests, and for a client of this agent). */
export function parseAnswer(message: Uint8Array): AgentAnswer {
  const reader = new WireReader(message, 'the answer');
  const type = reader.byte('type');
  switch (type) {
    case AgentMessage.FAILURE:
      return { kind: 'failure' };
    case AgentMessage.SUCCESS:
      return { kind: 'success' };
    case AgentMessage.EXTENSION_FAILURE:
      return { kind: 'extension-failure' };
    case AgentMessage.IDENTITIES_ANSWER: {
      const count = reader.uint32('count');
      const identities: EncodedIdentity[] = [];
      // Each identity takes at least 8 bytes: a count beyond that is refused before any allocation.
      if (count > reader.remaining / 8) {
        throw new AgentProtocolError('TRUNCATED', `the answer names ${count} identities it has no room for.`);
      }
      for (let i = 0; i < count; i += 1) {
        identities.push({ keyBlob: reader.string('key blob'), comment: reader.text('comment') });
      }
      reader.end();
      return { kind: 'identities', identities };
    }
    case AgentMessage.SIGN_RESPONSE: {
      const signatureBlob = reader.string('signature');
      reader.end();
      return { kind: 'signature', signatureBlob };
    }
    default:
      return { kind: 'unknown', type };
  }
}

// ---------------------------------------------------------------------------------------------------
// Keys and certificates

export const SSH_KEY_ALGORITHM: Record<SessionKeyAlgorithm, string> = {
  'ecdsa-p256': 'ecdsa-sha2-nistp256',
  ed25519: 'ssh-ed25519',
};
const CERTIFICATE_ALGORITHM: Record<SessionKeyAlgorithm, string> = {
  'ecdsa-p256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  ed25519: 'ssh-ed25519-cert-v01@openssh.com',
};

function algorithmOfName(
  name: string,
  names: Record<SessionKeyAlgorithm, string>,
): SessionKeyAlgorithm | undefined {
  return (Object.keys(names) as SessionKeyAlgorithm[]).find((algorithm) => names[algorithm] === name);
}

/** The key fields after the algorithm name: RFC 5656 §3.1 (curve name, Q) or RFC 8709 §4 (32 bytes). */
function readKeyFields(reader: WireReader, algorithm: SessionKeyAlgorithm): Uint8Array[] {
  if (algorithm === 'ed25519') {
    const key = reader.string('Ed25519 key');
    if (key.length !== 32)
      throw new AgentProtocolError('MALFORMED_KEY', 'An Ed25519 public key is 32 bytes.');
    return [sshString(key)];
  }
  const curve = utf8Decoder.decode(reader.string('curve name'));
  if (curve !== 'nistp256')
    throw new AgentProtocolError('MALFORMED_KEY', `The curve is ${JSON.stringify(curve)}, not nistp256.`);
  const point = reader.string('EC point');
  if (point.length !== 65 || point[0] !== 0x04) {
    throw new AgentProtocolError('MALFORMED_KEY', 'A P-256 public key is a 65-byte uncompressed point.');
  }
  return [sshString(curve), sshString(point)];
}

export interface ParsedKeyBlob {
  algorithm: SessionKeyAlgorithm;
  certificate: boolean;
  /** The plain public key's blob: the key itself, or the key a certificate certifies. */
  publicKeyBlob: Uint8Array;
}

/**
 * A P-256 or Ed25519 public key blob, or an OpenSSH certificate of one (PROTOCOL.certkeys: the certificate
 * algorithm, a nonce, then the key's fields). A certificate's other fields are not read: the agent does not
 * judge certificates, the server does.
 */
export function parseKeyBlob(blob: Uint8Array): ParsedKeyBlob {
  const reader = new WireReader(blob, 'the key');
  const name = utf8Decoder.decode(reader.string('algorithm'));
  const plain = algorithmOfName(name, SSH_KEY_ALGORITHM);
  if (plain) {
    const fields = readKeyFields(reader, plain);
    reader.end();
    return { algorithm: plain, certificate: false, publicKeyBlob: concatBytes([sshString(name), ...fields]) };
  }
  const certified = algorithmOfName(name, CERTIFICATE_ALGORITHM);
  if (!certified) {
    throw new AgentProtocolError(
      'MALFORMED_KEY',
      `Key type ${JSON.stringify(name.slice(0, 64))} is not P-256 or Ed25519.`,
    );
  }
  reader.string('nonce');
  const fields = readKeyFields(reader, certified);
  return {
    algorithm: certified,
    certificate: true,
    publicKeyBlob: concatBytes([sshString(SSH_KEY_ALGORITHM[certified]), ...fields]),
  };
}

/** The wire blob of an authorized_keys / .pub line ("<type> <base64> [comment]"), its type checked. */
export function parseAuthorizedKeyLine(line: string): { blob: Uint8Array; parsed: ParsedKeyBlob } {
  const [type, base64] = line.trim().split(/\s+/);
  if (!type || !base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
    throw new AgentProtocolError(
      'MALFORMED_KEY',
      'Not an OpenSSH public key or certificate line ("<type> <base64> …").',
    );
  }
  const blob = new Uint8Array(Buffer.from(base64, 'base64'));
  const parsed = parseKeyBlob(blob);
  const blobType = parsed.certificate
    ? CERTIFICATE_ALGORITHM[parsed.algorithm]
    : SSH_KEY_ALGORITHM[parsed.algorithm];
  if (blobType !== type) {
    throw new AgentProtocolError(
      'MALFORMED_KEY',
      `The line says ${JSON.stringify(type)} but its key is ${blobType}.`,
    );
  }
  return { blob, parsed };
}

// ---------------------------------------------------------------------------------------------------
// Signatures

const P256_SCALAR_BYTES = 32;

/** A DER length at `offset` (X.690 §8.1.3, definite form, minimal as DER requires): [length, next offset]. */
function derLength(der: Uint8Array, offset: number): [number, number] {
  const first = der[offset];
  if (first === undefined) throw malformedSignature('a length is missing');
  if (first < 0x80) return [first, offset + 1];
  // A P-256 signature is at most 72 bytes: one length byte in long form (0x81, at least 0x80) is the most.
  const second = der[offset + 1];
  if (first !== 0x81 || second === undefined || second < 0x80)
    throw malformedSignature('a length is not DER');
  return [second, offset + 2];
}

function malformedSignature(what: string): AgentProtocolError {
  return new AgentProtocolError(
    'MALFORMED_SIGNATURE',
    `The session key's ECDSA signature is malformed: ${what}.`,
  );
}

/** One DER INTEGER of a signature: positive, minimally encoded, non-zero, at most 32 bytes of magnitude. */
function derScalar(der: Uint8Array, offset: number, name: string): [Uint8Array, number] {
  if (der[offset] !== 0x02) throw malformedSignature(`${name} is not an INTEGER`);
  const [length, start] = derLength(der, offset + 1);
  const end = start + length;
  if (length === 0 || end > der.length) throw malformedSignature(`${name} is truncated`);
  const value = der.subarray(start, end);
  if ((value[0] as number) & 0x80) throw malformedSignature(`${name} is negative`);
  if (value.length > 1 && value[0] === 0 && !((value[1] as number) & 0x80)) {
    throw malformedSignature(`${name} is not minimally encoded`);
  }
  const magnitude = value[0] === 0 ? value.subarray(1) : value;
  if (magnitude.length > P256_SCALAR_BYTES) throw malformedSignature(`${name} is longer than 32 bytes`);
  if (magnitude.every((byte) => byte === 0)) throw malformedSignature(`${name} is zero`);
  return [magnitude, end];
}

/** ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3), as unsigned big-endian r and s. */
export function parseDerEcdsaSignature(der: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  if (der[0] !== 0x30) throw malformedSignature('not a SEQUENCE');
  const [length, start] = derLength(der, 1);
  if (start + length !== der.length) throw malformedSignature('the SEQUENCE does not span the signature');
  const [r, afterR] = derScalar(der, start, 'r');
  const [s, afterS] = derScalar(der, afterR, 's');
  if (afterS !== der.length) throw malformedSignature('bytes after s');
  return { r, s };
}

/**
 * The SSH signature blob for what a SessionSigner answers:
 * - RFC 5656 §3.1.2: string "ecdsa-sha2-nistp256", string (mpint r, mpint s), from the signer's DER;
 * - RFC 8709 §6: string "ssh-ed25519", string signature (64 bytes).
 * A certificate's signature carries the plain key's algorithm name (PROTOCOL.certkeys).
 */
export function sshSignatureBlob(algorithm: SessionKeyAlgorithm, signature: Uint8Array): Uint8Array {
  if (algorithm === 'ed25519') {
    if (signature.length !== 64) {
      throw new AgentProtocolError(
        'MALFORMED_SIGNATURE',
        `An Ed25519 signature is 64 bytes, not ${signature.length}.`,
      );
    }
    return concatBytes([sshString(SSH_KEY_ALGORITHM.ed25519), sshString(signature)]);
  }
  const { r, s } = parseDerEcdsaSignature(signature);
  return concatBytes([
    sshString(SSH_KEY_ALGORITHM['ecdsa-p256']),
    sshString(concatBytes([encodeMpint(r), encodeMpint(s)])),
  ]);
}

/** Reads back an SSH signature blob (for tests and verification): the algorithm name and its body. */
export function parseSshSignatureBlob(blob: Uint8Array): { algorithm: string; body: Uint8Array } {
  const reader = new WireReader(blob, 'the signature');
  const algorithm = utf8Decoder.decode(reader.string('algorithm'));
  const body = reader.string('signature');
  reader.end();
  return { algorithm, body };
}

/** Reads back the two mpints of an ECDSA signature body as unsigned big-endian bytes. */
export function parseEcdsaSignatureBody(body: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const reader = new WireReader(body, 'the ECDSA signature');
  const r = reader.string('r');
  const s = reader.string('s');
  reader.end();
  const unsigned = (mpint: Uint8Array): Uint8Array => (mpint[0] === 0 ? mpint.subarray(1) : mpint);
  return { r: unsigned(r), s: unsigned(s) };
}

/** Equality of two byte strings (public data: no constant time needed). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
