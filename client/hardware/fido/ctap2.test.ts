import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ctapMap, decodeCtap, encodeCtap } from './cbor';
import type { CtapMap, CtapValue } from './cbor';
import {
  attestationObject,
  COSE_ALG,
  credPropsOutput,
  CTAP2_CMD,
  CTAP2_STATUS,
  Ctap2Error,
  ec2CoseKey,
  encodeResponse,
  getAssertionRequest,
  makeCredentialRequest,
  parseAuthenticatorData,
  parseGetAssertionResponse,
  parseGetInfoResponse,
  parseMakeCredentialResponse,
  parsePinRetriesResponse,
  parseRequest,
  parseResponse,
} from './ctap2';

const rpIdHash = createHash('sha256').update('example.com').digest();
const x = new Uint8Array(32).fill(0x11);
const y = new Uint8Array(32).fill(0x22);

function authData(flags: number, signCount: number, attested?: { credentialId: Uint8Array }, ext?: CtapMap) {
  const parts: Uint8Array[] = [rpIdHash, Uint8Array.of(flags)];
  const counter = new Uint8Array(4);
  new DataView(counter.buffer).setUint32(0, signCount);
  parts.push(counter);
  if (attested) {
    const header = new Uint8Array(18);
    header.fill(0xaa, 0, 16);
    new DataView(header.buffer).setUint16(16, attested.credentialId.length);
    parts.push(header, attested.credentialId, encodeCtap(ec2CoseKey(x, y, COSE_ALG.ES256)));
  }
  if (ext) parts.push(encodeCtap(ext));
  return Uint8Array.from(Buffer.concat(parts));
}

function ctap2Code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(Ctap2Error);
    return (error as Ctap2Error).code;
  }
  return undefined;
}

describe('CTAP2 responses', () => {
  it('parses getInfo and ignores keys it does not know', () => {
    const body = ctapMap([
      [0x01, ['FIDO_2_0', 'FIDO_2_1']],
      [0x02, ['credProtect']],
      [0x03, new Uint8Array(16).fill(7)],
      [
        0x04,
        ctapMap([
          ['rk', true],
          ['clientPin', false],
          ['futureOption', true],
        ]),
      ],
      [0x05, 1200],
      [0x06, [2, 1]],
      [
        0x0a,
        [
          ctapMap([
            ['alg', -7],
            ['type', 'public-key'],
          ]),
        ],
      ],
      [0x0d, 4],
      [0x20, 'a key from CTAP 2.9'],
      [0x21, ctapMap([[1, [1, 2]]])],
    ]);
    const info = parseGetInfoResponse(encodeResponse(0, body));
    expect(info.versions).toEqual(['FIDO_2_0', 'FIDO_2_1']);
    expect(info.options.get('rk')).toBe(true);
    expect(info.options.get('clientPin')).toBe(false);
    expect(info.pinUvAuthProtocols).toEqual([2, 1]);
    expect(info.algorithms).toEqual([{ type: 'public-key', alg: -7 }]);
    expect(info.maxMsgSize).toBe(1200);
    expect(info.minPinLength).toBe(4);
  });

  it('parses a makeCredential response, ignoring unknown keys, with the COSE key', () => {
    const credentialId = new Uint8Array(20).fill(5);
    const data = authData(0x45, 1, { credentialId });
    const body = ctapMap([
      [0x01, 'packed'],
      [0x02, data],
      [
        0x03,
        ctapMap([
          ['alg', -7],
          ['sig', new Uint8Array(70)],
        ]),
      ],
      [0x09, 'unknown member'],
    ]);
    const response = parseMakeCredentialResponse(encodeResponse(0, body));
    expect(response.fmt).toBe('packed');
    expect(response.authData.up && response.authData.uv && response.authData.at).toBe(true);
    expect(response.authData.ed).toBe(false);
    expect(response.authData.signCount).toBe(1);
    expect(response.authData.attestedCredentialData?.credentialId).toEqual(credentialId);
    const key = response.authData.attestedCredentialData!.credentialPublicKey;
    expect([key.kty, key.alg, key.crv]).toEqual([2, -7, 1]);
    expect(key.x).toEqual(x);
    const attObj = decodeCtap(attestationObject(response)) as Map<string, CtapValue>;
    expect([...attObj.keys()]).toEqual(['fmt', 'attStmt', 'authData']);
  });

  it('parses authenticatorData with extensions after the attested credential data', () => {
    const data = authData(0xc1, 7, { credentialId: Uint8Array.of(1) }, ctapMap([['credProtect', 2]]));
    const parsed = parseAuthenticatorData(data);
    expect(parsed.extensions?.get('credProtect')).toBe(2);
    expect(parsed.signCount).toBe(7);
  });

  it('rejects authenticatorData with trailing bytes or a truncated key', () => {
    const data = authData(0x41, 0, { credentialId: Uint8Array.of(1, 2) });
    expect(ctap2Code(() => parseAuthenticatorData(Uint8Array.from([...data, 0])))).toBe('INVALID_RESPONSE');
    expect(ctap2Code(() => parseAuthenticatorData(data.subarray(0, data.length - 3)))).toBe(
      'INVALID_RESPONSE',
    );
    expect(ctap2Code(() => parseAuthenticatorData(data.subarray(0, 36)))).toBe('INVALID_RESPONSE');
  });

  it('parses a getAssertion response with user and numberOfCredentials', () => {
    const body = ctapMap([
      [
        0x01,
        ctapMap([
          ['id', Uint8Array.of(9)],
          ['type', 'public-key'],
        ]),
      ],
      [0x02, authData(0x05, 3)],
      [0x03, new Uint8Array(71)],
      [
        0x04,
        ctapMap([
          ['id', Uint8Array.of(1, 2)],
          ['name', 'alice'],
        ]),
      ],
      [0x05, 2],
      [0x0f, true],
    ]);
    const assertion = parseGetAssertionResponse(encodeResponse(0, body));
    expect(assertion.credential?.id).toEqual(Uint8Array.of(9));
    expect(assertion.user?.name).toBe('alice');
    expect(assertion.numberOfCredentials).toBe(2);
    expect(assertion.authData.uv).toBe(true);
  });

  it('maps status bytes to typed errors with messages a person can act on', () => {
    const pinInvalid = (() => {
      try {
        parseResponse(Uint8Array.of(CTAP2_STATUS.PIN_INVALID));
      } catch (error) {
        return error as Ctap2Error;
      }
    })();
    expect(pinInvalid?.code).toBe('PIN_INVALID');
    expect(pinInvalid?.status).toBe(0x31);
    expect(pinInvalid?.message).toMatch(/Wrong PIN/);
    const cases: [number, string][] = [
      [0x32, 'PIN_BLOCKED'],
      [0x33, 'PIN_AUTH_INVALID'],
      [0x35, 'PIN_NOT_SET'],
      [0x36, 'PIN_REQUIRED'],
      [0x2e, 'NO_CREDENTIALS'],
      [0x27, 'OPERATION_DENIED'],
      [0x2d, 'KEEPALIVE_CANCEL'],
      [0x2f, 'USER_ACTION_TIMEOUT'],
      [0x3a, 'ACTION_TIMEOUT'],
      [0x3b, 'UP_REQUIRED'],
      [0x3c, 'UV_BLOCKED'],
      [0xee, 'UNKNOWN_STATUS'],
    ];
    for (const [status, code] of cases)
      expect(ctap2Code(() => parseResponse(Uint8Array.of(status)))).toBe(code);
  });

  it('wraps a truncated CBOR body as INVALID_RESPONSE', () => {
    const full = encodeResponse(0, ctapMap([[0x03, 8]]));
    expect(ctap2Code(() => parsePinRetriesResponse(full.subarray(0, full.length - 1)))).toBe(
      'INVALID_RESPONSE',
    );
    expect(parsePinRetriesResponse(full).retries).toBe(8);
  });

  it('rejects a response body that is not canonical', () => {
    const unsorted = Uint8Array.from([0, ...Buffer.from('a2030801f5', 'hex')]);
    expect(ctap2Code(() => parseResponse(unsorted))).toBe('INVALID_RESPONSE');
  });
});

describe('CTAP2 requests', () => {
  const clientDataHash = new Uint8Array(32).fill(3);

  it('builds makeCredential in canonical CBOR that an authenticator parses back', () => {
    const req = makeCredentialRequest({
      clientDataHash,
      rp: { id: 'example.com', name: 'Example' },
      user: { id: Uint8Array.of(1), name: 'alice', displayName: 'Alice' },
      pubKeyCredParams: [{ type: 'public-key', alg: COSE_ALG.ES256 }],
      options: { rk: true },
      pinUvAuthParam: new Uint8Array(32),
      pinUvAuthProtocol: 2,
    });
    expect(req.command).toBe(CTAP2_CMD.MAKE_CREDENTIAL);
    const parsed = parseRequest(Uint8Array.from([req.command, ...req.params]));
    expect(parsed.command).toBe(1);
    expect([...parsed.params!.keys()]).toEqual([1, 2, 3, 4, 7, 8, 9]);
    expect((parsed.params!.get(3) as CtapMap).get('displayName')).toBe('Alice');
  });

  it('computes credProps.rk on the client from the rk option', () => {
    expect(credPropsOutput({ options: { rk: true } })).toEqual({ rk: true });
    expect(credPropsOutput({})).toEqual({ rk: false });
  });

  it('omits empty allowList and options in getAssertion', () => {
    const req = getAssertionRequest({ rpId: 'example.com', clientDataHash, allowList: [], options: {} });
    expect([...(decodeCtap(req.params) as CtapMap).keys()]).toEqual([1, 2]);
  });
});
