// The agent protocol on bytes: known-answer encodings (RFC 4251 §5, RFC 5656 §3.1.2, RFC 8709 §6,
// draft-ietf-sshm-ssh-agent §3), the DER → SSH signature conversion checked against node:crypto's own
// verification, and properties: whatever bytes arrive, a parser returns a value or throws
// AgentProtocolError, and frames cut anywhere decode to the same messages.
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeSshPublicKeyBlob, formatSshPublicKey, sshPublicKeyParts } from '../keystore/session-key';
import {
  AgentMessage,
  AgentProtocolError,
  FrameDecoder,
  MAX_MESSAGE_BYTES,
  encodeFailure,
  encodeIdentitiesAnswer,
  encodeMpint,
  encodeSignResponse,
  frame,
  parseAnswer,
  parseAuthorizedKeyLine,
  parseDerEcdsaSignature,
  parseEcdsaSignatureBody,
  parseKeyBlob,
  parseRequest,
  parseSshSignatureBlob,
  sshSignatureBlob,
} from './protocol';
import type { AgentProtocolErrorReason } from './protocol';
import { sshString } from '../keystore/session-key';

const RUN = { numRuns: 1000 };

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

function reasonOf(fn: () => unknown): AgentProtocolErrorReason | 'none' {
  try {
    fn();
    return 'none';
  } catch (error) {
    if (error instanceof AgentProtocolError) return error.reason;
    throw error;
  }
}

function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof AgentProtocolError)) throw error;
  }
}

function signRequest(keyBlob: Uint8Array, data: Uint8Array, flags: number): Uint8Array {
  const flagBytes = Buffer.alloc(4);
  flagBytes.writeUInt32BE(flags);
  return cat(Uint8Array.of(AgentMessage.SIGN_REQUEST), sshString(keyBlob), sshString(data), flagBytes);
}

function sshBlobOf(publicKey: KeyObject): Uint8Array {
  return encodeSshPublicKeyBlob(sshPublicKeyParts(publicKey));
}

/** P-256 r and s back to IEEE P1363 (r || s, 32 bytes each), to verify with node:crypto. */
function p1363(r: Uint8Array, s: Uint8Array): Buffer {
  const out = Buffer.alloc(64);
  out.set(r, 32 - r.length);
  out.set(s, 64 - s.length);
  return out;
}

describe('framing', () => {
  it('frames a message as uint32 length then the message', () => {
    expect(toHex(frame(Uint8Array.of(AgentMessage.REQUEST_IDENTITIES)))).toBe('000000010b');
  });

  it('refuses a frame over the limit as soon as its length is in, before buffering its body', () => {
    const decoder = new FrameDecoder();
    const length = Buffer.alloc(4);
    length.writeUInt32BE(MAX_MESSAGE_BYTES + 1);
    expect(reasonOf(() => decoder.push(length))).toBe('FRAME_TOO_LARGE');
    expect(reasonOf(() => new FrameDecoder(16).push(hex('00000011')))).toBe('FRAME_TOO_LARGE');
    expect(reasonOf(() => new FrameDecoder().push(hex('ffffffff')))).toBe('FRAME_TOO_LARGE');
    expect(reasonOf(() => frame(new Uint8Array(MAX_MESSAGE_BYTES + 1)))).toBe('FRAME_TOO_LARGE');
  });

  it('refuses a frame of length zero', () => {
    expect(reasonOf(() => new FrameDecoder().push(hex('00000000')))).toBe('EMPTY_MESSAGE');
    expect(reasonOf(() => frame(new Uint8Array(0)))).toBe('EMPTY_MESSAGE');
  });

  it('takes a message of exactly the limit', () => {
    const message = new Uint8Array(MAX_MESSAGE_BYTES).fill(7);
    const decoded = new FrameDecoder().push(frame(message));
    expect(decoded).toHaveLength(1);
    expect(Buffer.from(decoded[0] ?? []).equals(message)).toBe(true);
  });

  it('gives copies, so the caller may wipe the Buffer it read (an add carries a private key)', () => {
    const decoder = new FrameDecoder();
    const first = Buffer.from(frame(hex('1101020304')));
    const [whole] = decoder.push(first);
    const split = Buffer.from(frame(hex('0b')));
    const second = Buffer.concat([split.subarray(0, 2)]);
    expect(decoder.push(second)).toEqual([]);
    first.fill(0);
    second.fill(0);
    expect(whole).toEqual(hex('1101020304'));
    expect(decoder.push(split.subarray(2))).toEqual([hex('0b')]);
  });

  it('decodes the same messages however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (messages, cuts) => {
          const stream = cat(...messages.map(frame));
          const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
          const decoder = new FrameDecoder();
          const decoded: Uint8Array[] = [];
          let previous = 0;
          for (const point of [...points, stream.length]) {
            decoded.push(...decoder.push(stream.subarray(previous, point)));
            previous = point;
          }
          expect(decoded).toEqual(messages);
          expect(decoder.buffered).toBe(0);
        },
      ),
      RUN,
    );
  });

  it('holds at most one unfinished message, whatever bytes arrive', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 16 }), (chunks) => {
        const decoder = new FrameDecoder(256);
        onlyProtocolErrors(() => {
          for (const chunk of chunks) {
            decoder.push(chunk);
            expect(decoder.buffered).toBeLessThanOrEqual(4 + 256);
          }
        });
      }),
      RUN,
    );
  });
});

describe('requests', () => {
  it('parses SSH_AGENTC_REQUEST_IDENTITIES', () => {
    expect(parseRequest(hex('0b'))).toEqual({ kind: 'request-identities' });
    expect(reasonOf(() => parseRequest(hex('0b00')))).toBe('TRAILING_BYTES');
  });

  it('parses SSH_AGENTC_SIGN_REQUEST with its key blob, data and flags', () => {
    const message = hex('0d 00000003 010203 00000002 aabb 00000006');
    expect(parseRequest(message)).toEqual({
      kind: 'sign',
      keyBlob: hex('010203'),
      data: hex('aabb'),
      flags: 6,
    });
  });

  it('keeps a flag word with the top bit set unsigned', () => {
    const request = parseRequest(signRequest(hex('01'), hex('02'), 0xffffffff));
    expect(request).toMatchObject({ kind: 'sign', flags: 0xffffffff });
  });

  it('refuses a sign request cut short anywhere, or with bytes after its flags', () => {
    const message = signRequest(hex('0102030405'), hex('aabbccdd'), 2);
    for (let length = 1; length < message.length; length += 1) {
      expect(reasonOf(() => parseRequest(message.subarray(0, length)))).toBe('TRUNCATED');
    }
    expect(reasonOf(() => parseRequest(cat(message, hex('00'))))).toBe('TRAILING_BYTES');
  });

  it('refuses a string whose length runs past the message', () => {
    expect(reasonOf(() => parseRequest(hex('0d ffffffff 00')))).toBe('TRUNCATED');
  });

  it('parses an extension as its name and the raw bytes after it (OpenSSH PROTOCOL.agent)', () => {
    const contents = hex('00000004 6b657931 00000002 0102 01');
    const message = cat(hex('1b'), sshString('session-bind@openssh.com'), contents);
    expect(parseRequest(message)).toEqual({ kind: 'extension', name: 'session-bind@openssh.com', contents });
    expect(reasonOf(() => parseRequest(hex('1b 00000010 61')))).toBe('TRUNCATED');
  });

  it('names every request that would add, remove or lock keys, without reading its body', () => {
    const expected: [number, string][] = [
      [17, 'SSH_AGENTC_ADD_IDENTITY'],
      [18, 'SSH_AGENTC_REMOVE_IDENTITY'],
      [19, 'SSH_AGENTC_REMOVE_ALL_IDENTITIES'],
      [20, 'SSH_AGENTC_ADD_SMARTCARD_KEY'],
      [21, 'SSH_AGENTC_REMOVE_SMARTCARD_KEY'],
      [22, 'SSH_AGENTC_LOCK'],
      [23, 'SSH_AGENTC_UNLOCK'],
      [25, 'SSH_AGENTC_ADD_ID_CONSTRAINED'],
      [26, 'SSH_AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED'],
      [1, 'SSH_AGENTC_REQUEST_RSA_IDENTITIES'],
      [9, 'SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES'],
    ];
    for (const [type, name] of expected) {
      // Whatever follows (an add carries a private key) is not parsed: even garbage is the same refusal.
      expect(parseRequest(Uint8Array.of(type, 0xff, 0xff))).toEqual({ kind: 'key-management', type, name });
    }
  });

  it('gives an unknown message type as a value, for a FAILURE answer', () => {
    expect(parseRequest(hex('63 0102'))).toEqual({ kind: 'unknown', type: 0x63 });
    expect(parseRequest(hex('0c'))).toEqual({ kind: 'unknown', type: 12 });
  });

  it('returns a request or throws AgentProtocolError for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (bytes) => {
        onlyProtocolErrors(() => parseRequest(bytes));
      }),
      RUN,
    );
    // The interesting types, with random bodies.
    fc.assert(
      fc.property(fc.constantFrom(11, 13, 27), fc.uint8Array({ maxLength: 120 }), (type, body) => {
        onlyProtocolErrors(() => parseRequest(cat(Uint8Array.of(type), body)));
      }),
      RUN,
    );
  });

  it('parses every well-formed sign request back to its fields', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(),
        (key, data, flags) => {
          const flagWord = flags >>> 0;
          expect(parseRequest(signRequest(key, data, flagWord))).toEqual({
            kind: 'sign',
            keyBlob: key,
            data,
            flags: flagWord,
          });
        },
      ),
      RUN,
    );
  });
});

describe('answers', () => {
  it('encodes SSH_AGENT_FAILURE as one byte', () => {
    expect(toHex(encodeFailure())).toBe('05');
  });

  it('encodes SSH_AGENT_IDENTITIES_ANSWER: count, then key blob and comment for each', () => {
    const answer = encodeIdentitiesAnswer([
      { keyBlob: hex('010203'), comment: 'c' },
      { keyBlob: hex('ff'), comment: '' },
    ]);
    expect(toHex(answer)).toBe(
      '0c' + '00000002' + '00000003010203' + '0000000163' + '00000001ff' + '00000000',
    );
    expect(toHex(encodeIdentitiesAnswer([]))).toBe('0c00000000');
  });

  it('encodes SSH_AGENT_SIGN_RESPONSE as the signature blob in a string', () => {
    expect(toHex(encodeSignResponse(hex('abcd')))).toBe('0e00000002abcd');
  });

  it('reads back what it encodes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ keyBlob: fc.uint8Array({ maxLength: 100 }), comment: fc.string({ maxLength: 20 }) }),
          {
            maxLength: 5,
          },
        ),
        (identities) => {
          expect(parseAnswer(encodeIdentitiesAnswer(identities))).toEqual({ kind: 'identities', identities });
        },
      ),
      RUN,
    );
  });

  it('returns an answer or throws AgentProtocolError for any bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom(5, 6, 12, 14, 28, 99), fc.uint8Array({ maxLength: 120 }), (type, body) => {
        onlyProtocolErrors(() => parseAnswer(cat(Uint8Array.of(type), body)));
      }),
      RUN,
    );
    expect(reasonOf(() => parseAnswer(hex('0c ffffffff')))).toBe('TRUNCATED');
  });
});

describe('mpint (RFC 4251 §5)', () => {
  it('encodes the RFC examples', () => {
    expect(toHex(encodeMpint(hex('')))).toBe('00000000');
    expect(toHex(encodeMpint(hex('00')))).toBe('00000000');
    expect(toHex(encodeMpint(hex('09a378f9b2e332a7')))).toBe('0000000809a378f9b2e332a7');
    expect(toHex(encodeMpint(hex('80')))).toBe('000000020080');
  });

  it('drops leading zero bytes and puts one back before a set top bit', () => {
    expect(toHex(encodeMpint(hex('0000007f')))).toBe('000000017f');
    expect(toHex(encodeMpint(hex('000080')))).toBe('000000020080');
    expect(toHex(encodeMpint(hex('00000100')))).toBe('000000020100');
  });
});

describe('signatures', () => {
  it('converts a hand-made DER signature to mpints (RFC 5656 §3.1.2)', () => {
    // r = 0x80 (DER needs a 0x00 before it; so does the mpint), s = 0x0100.
    const der = hex('30 08 0202 0080 0202 0100');
    expect(parseDerEcdsaSignature(der)).toEqual({ r: hex('80'), s: hex('0100') });
    const blob = sshSignatureBlob('ecdsa-p256', der);
    expect(toHex(blob)).toBe(
      toHex(sshString('ecdsa-sha2-nistp256')) + '0000000c' + '000000020080' + '000000020100',
    );
  });

  it('refuses DER that is not a minimal, positive, non-zero P-256 r and s', () => {
    const bad: Record<string, string> = {
      'not a sequence': '31 06 020101 020101',
      'sequence length short': '30 05 020101 020101',
      'sequence length long': '30 07 020101 020101',
      'non-minimal integer': '30 07 02020001 020101',
      'negative r': '30 06 020180 020101',
      'zero s': '30 06 020101 020100',
      'r of 33 bytes': `30 27 0222 01${'00'.repeat(33)} 020101`,
      'empty integer': '30 05 0200 020101',
      'long form length that fits short': '30 81 06 020101 020101',
      'trailing bytes in sequence': '30 09 020101 020101 020100',
      'not an integer': '30 06 030101 020101',
      empty: '',
    };
    for (const [what, der] of Object.entries(bad)) {
      expect(
        reasonOf(() => parseDerEcdsaSignature(hex(der))),
        what,
      ).toBe('MALFORMED_SIGNATURE');
    }
  });

  it('takes the long length form DER uses for lengths of 128 and more', () => {
    // Not reachable with P-256 scalars, but DER all the same: refused for their size, not their length form.
    const r = `0221 00${'ff'.repeat(32)}`;
    const s = `0221 00${'ff'.repeat(32)}`;
    expect(parseDerEcdsaSignature(hex(`30 46 ${r} ${s}`)).r).toHaveLength(32);
  });

  it("turns node:crypto's P-256 DER signatures into SSH blobs that verify, short r and s included", () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let shortScalar = false;
    let highBit = false;
    for (let i = 0; i < 4000 && !(shortScalar && highBit && i >= 200); i += 1) {
      const data = Buffer.from(`message ${i}`);
      const der = sign('sha256', data, privateKey);
      const { algorithm, body } = parseSshSignatureBlob(sshSignatureBlob('ecdsa-p256', der));
      expect(algorithm).toBe('ecdsa-sha2-nistp256');
      const { r, s } = parseEcdsaSignatureBody(body);
      // Each mpint is minimal: no 0x00 unless the next byte's top bit is set.
      const rawR = body.subarray(4, 4 + Buffer.from(body).readUInt32BE(0));
      if (rawR[0] === 0) expect(rawR[1]! & 0x80).toBe(0x80);
      if (rawR[0]! & 0x80) throw new Error('an mpint r with its top bit set would be negative');
      if (r.length < 32 || s.length < 32) shortScalar = true;
      if (rawR[0] === 0) highBit = true;
      expect(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p1363(r, s))).toBe(true);
    }
    expect(shortScalar).toBe(true);
    expect(highBit).toBe(true);
  });

  it('wraps an Ed25519 signature as string "ssh-ed25519", string 64 bytes (RFC 8709 §6)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const data = Buffer.from('data');
    const signature = sign(null, data, privateKey);
    const blob = sshSignatureBlob('ed25519', signature);
    expect(toHex(blob)).toBe(toHex(sshString('ssh-ed25519')) + '00000040' + signature.toString('hex'));
    const { body } = parseSshSignatureBlob(blob);
    expect(verify(null, data, publicKey, Buffer.from(body))).toBe(true);
    expect(reasonOf(() => sshSignatureBlob('ed25519', signature.subarray(1)))).toBe('MALFORMED_SIGNATURE');
  });

  it('converts or refuses any bytes a signer might answer, with a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        onlyProtocolErrors(() => sshSignatureBlob('ecdsa-p256', bytes));
        onlyProtocolErrors(() => sshSignatureBlob('ed25519', bytes));
      }),
      RUN,
    );
    // DER-shaped input, so the property reaches past the first tag.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (r, s) => {
        const integer = (v: Uint8Array): Uint8Array => cat(Uint8Array.of(0x02, v.length), v);
        const body = cat(integer(r), integer(s));
        onlyProtocolErrors(() =>
          sshSignatureBlob('ecdsa-p256', cat(Uint8Array.of(0x30, body.length & 0xff), body)),
        );
      }),
      RUN,
    );
  });
});

describe('keys and certificates', () => {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const ed25519 = generateKeyPairSync('ed25519').publicKey;

  /** A certificate's layout up to the key (PROTOCOL.certkeys); the rest is not read by the agent. */
  function certificateBlob(publicKey: KeyObject): Uint8Array {
    const plain = sshBlobOf(publicKey);
    const name = publicKey.asymmetricKeyType === 'ed25519' ? 'ssh-ed25519' : 'ecdsa-sha2-nistp256';
    const keyFields = plain.subarray(sshString(name).length);
    return cat(
      sshString(`${name}-cert-v01@openssh.com`),
      sshString(hex('0011223344')),
      keyFields,
      hex('0000000000000001'),
    );
  }

  it('reads a plain P-256 or Ed25519 key blob', () => {
    for (const key of [p256, ed25519]) {
      const blob = sshBlobOf(key);
      expect(parseKeyBlob(blob)).toEqual({
        algorithm: key === p256 ? 'ecdsa-p256' : 'ed25519',
        certificate: false,
        publicKeyBlob: blob,
      });
    }
  });

  it("reads the certified key's plain blob out of a certificate", () => {
    for (const key of [p256, ed25519]) {
      const parsed = parseKeyBlob(certificateBlob(key));
      expect(parsed.certificate).toBe(true);
      expect(parsed.publicKeyBlob).toEqual(sshBlobOf(key));
    }
  });

  it('reads an authorized_keys line and checks its type against its blob', () => {
    const line = formatSshPublicKey(sshPublicKeyParts(p256));
    expect(parseAuthorizedKeyLine(`${line} comment here`).blob).toEqual(sshBlobOf(p256));
    const lying = `ssh-ed25519 ${line.split(' ')[1]}`;
    expect(reasonOf(() => parseAuthorizedKeyLine(lying))).toBe('MALFORMED_KEY');
    expect(reasonOf(() => parseAuthorizedKeyLine('ssh-ed25519'))).toBe('MALFORMED_KEY');
    expect(reasonOf(() => parseAuthorizedKeyLine('ssh-ed25519 !!!'))).toBe('MALFORMED_KEY');
  });

  it('refuses other key types and malformed points', () => {
    expect(reasonOf(() => parseKeyBlob(cat(sshString('ssh-rsa'), sshString(hex('010001')))))).toBe(
      'MALFORMED_KEY',
    );
    expect(
      reasonOf(() =>
        parseKeyBlob(cat(sshString('ecdsa-sha2-nistp256'), sshString('nistp384'), sshString(hex('04')))),
      ),
    ).toBe('MALFORMED_KEY');
    expect(reasonOf(() => parseKeyBlob(cat(sshString('ssh-ed25519'), sshString(new Uint8Array(31)))))).toBe(
      'MALFORMED_KEY',
    );
    expect(reasonOf(() => parseKeyBlob(cat(sshBlobOf(ed25519), hex('00'))))).toBe('TRAILING_BYTES');
  });

  it('returns a key or throws AgentProtocolError for any bytes or text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        onlyProtocolErrors(() => parseKeyBlob(bytes));
        onlyProtocolErrors(() =>
          parseKeyBlob(cat(sshString('ecdsa-sha2-nistp256-cert-v01@openssh.com'), bytes)),
        );
        onlyProtocolErrors(() => parseKeyBlob(cat(sshString('ssh-ed25519'), bytes)));
      }),
      RUN,
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        onlyProtocolErrors(() => parseAuthorizedKeyLine(text));
        onlyProtocolErrors(() =>
          parseAuthorizedKeyLine(`ssh-ed25519 ${Buffer.from(text).toString('base64')}`),
        );
      }),
      RUN,
    );
  });
});
