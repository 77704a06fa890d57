// The synchronous ES256 assertion check (webauthn-assertion.ts) against @simplewebauthn/server's own
// verifyAuthenticationResponse: for a valid assertion and for one input violating each check of WebAuthn
// L3 §7.2, both must agree (the same counter and UV, or both refuse), and auth/webauthn.ts verifyAssertion
// must refuse with a typed error. A key of another algorithm (Ed25519) still goes through the library.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { verifyAuthenticationResponse } from '@simplewebauthn/server';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import { describe, expect, it } from 'vitest';
import { KeyportError } from '../proto/errors';
import type { MfaDeviceRow } from './storage/store';
import { verifyAssertion } from './webauthn';
import type { RelyingParty } from './webauthn';
import { verifyEs256Assertion } from './webauthn-assertion';

const RP_ID = 'example.com';
const ORIGIN = `https://${RP_ID}`;
const CHALLENGE = Buffer.from('the challenge of this login, 32 b').toString('base64url');
const rp: RelyingParty = { rpId: RP_ID, rpName: 'test', allowedCas: [], deniedCas: [] };
const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

interface Key {
  privateKey: KeyObject;
  cose: Uint8Array;
  hash: 'sha256' | null;
}

function es256Key(): Key {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const cose = new Map<number, number | Uint8Array>([
    [1, 2],
    [3, -7],
    [-1, 1],
    [-2, Buffer.from(jwk.x!, 'base64url')],
    [-3, Buffer.from(jwk.y!, 'base64url')],
  ]);
  return { privateKey, cose: isoCBOR.encode(cose), hash: 'sha256' };
}

function ed25519Key(): Key {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  const cose = new Map<number, number | Uint8Array>([
    [1, 1],
    [3, -8],
    [-1, 6],
    [-2, Buffer.from(jwk.x!, 'base64url')],
  ]);
  return { privateKey, cose: isoCBOR.encode(cose), hash: null };
}

interface Parts {
  type?: string;
  challenge?: string;
  origin?: string;
  crossOrigin?: boolean;
  topOrigin?: string;
  tokenBinding?: unknown;
  rpId?: string;
  flags?: number;
  counter?: number;
}

const UP = 0x01;
const UV = 0x04;
const BE = 0x08;
const BS = 0x10;

/** An assertion by `key`, signed over what `parts` say (defaults: a valid login with UP and UV). */
function assertion(key: Key, parts: Parts = {}): AuthenticationResponseJSON {
  const clientData: Record<string, unknown> = {
    type: parts.type ?? 'webauthn.get',
    challenge: parts.challenge ?? CHALLENGE,
    origin: parts.origin ?? ORIGIN,
    crossOrigin: parts.crossOrigin ?? false,
  };
  if (parts.topOrigin !== undefined) clientData['topOrigin'] = parts.topOrigin;
  if (parts.tokenBinding !== undefined) clientData['tokenBinding'] = parts.tokenBinding;
  const clientDataJSON = Buffer.from(JSON.stringify(clientData));
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(parts.counter ?? 7);
  const authData = Buffer.concat([
    createHash('sha256')
      .update(parts.rpId ?? RP_ID)
      .digest(),
    Buffer.from([parts.flags ?? UP | UV]),
    counter,
  ]);
  const signed = Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]);
  const signature = sign(key.hash, signed, key.privateKey);
  return {
    id: 'Y3JlZGVudGlhbC0x',
    rawId: 'Y3JlZGVudGlhbC0x',
    type: 'public-key',
    clientExtensionResults: {},
    response: {
      clientDataJSON: b64u(clientDataJSON),
      authenticatorData: b64u(authData),
      signature: b64u(signature),
    },
  };
}

const deviceOf = (key: Key): MfaDeviceRow =>
  ({
    webauthn_credential_id: 'Y3JlZGVudGlhbC0x',
    webauthn_public_key: b64u(key.cose),
    webauthn_sign_count: 0,
  }) as unknown as MfaDeviceRow;

/** What the fast path says: the result, or the refusal's message. */
async function fast(key: Key, response: AuthenticationResponseJSON, requireUserVerification = true) {
  try {
    return await verifyEs256Assertion({
      response,
      expectedChallenge: CHALLENGE,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      credentialId: 'Y3JlZGVudGlhbC0x',
      publicKey: b64u(key.cose),
      requireUserVerification,
    });
  } catch (error) {
    return { refused: (error as Error).message };
  }
}

/** What the library says for the same input. */
async function library(key: Key, response: AuthenticationResponseJSON, requireUserVerification = true) {
  try {
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: CHALLENGE,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      credential: { id: 'Y3JlZGVudGlhbC0x', publicKey: new Uint8Array(key.cose), counter: 0 },
      requireUserVerification,
    });
    return {
      verified: result.verified,
      newCounter: result.authenticationInfo.newCounter,
      userVerified: result.authenticationInfo.userVerified,
    };
  } catch (error) {
    return { refused: (error as Error).message };
  }
}

const key = es256Key();

/** One assertion per check, each violating only it. */
function violations(): [string, AuthenticationResponseJSON, boolean?][] {
  const valid = assertion(key);
  const tampered = assertion(key);
  const sig = Buffer.from(tampered.response.signature, 'base64url');
  sig[sig.length - 1]! ^= 0x01;
  tampered.response.signature = b64u(sig);
  const otherSigner = assertion(es256Key());
  return [
    ['no credential id', { ...valid, id: '', rawId: '' }],
    ['an id that is not the rawId', { ...valid, rawId: 'b3RoZXI' }],
    ['a credential type other than public-key', { ...valid, type: 'other' as 'public-key' }],
    ['clientData type webauthn.create', assertion(key, { type: 'webauthn.create' })],
    ['another challenge', assertion(key, { challenge: b64u(Buffer.from('another challenge')) })],
    ['another origin', assertion(key, { origin: 'https://evil.test' })],
    [
      'a cross-origin response from a top origin',
      assertion(key, { crossOrigin: true, topOrigin: 'https://evil.test' }),
    ],
    ['a top origin without crossOrigin', assertion(key, { topOrigin: ORIGIN })],
    ['a tokenBinding status that does not exist', assertion(key, { tokenBinding: { status: 'maybe' } })],
    ['a tokenBinding that is not an object', assertion(key, { tokenBinding: 'present' })],
    [
      'authenticatorData that is not base64url',
      { ...valid, response: { ...valid.response, authenticatorData: 'not+base64url/' } },
    ],
    ['a signature that is not base64url', { ...valid, response: { ...valid.response, signature: '%%' } }],
    [
      'authenticatorData cut short (rpIdHash only)',
      {
        ...valid,
        response: {
          ...valid.response,
          authenticatorData: b64u(Buffer.from(valid.response.authenticatorData, 'base64url').subarray(0, 32)),
        },
      },
    ],
    ['another relying party (rpIdHash)', assertion(key, { rpId: 'evil.example.com' })],
    ['no user presence (UP)', assertion(key, { flags: UV })],
    ['no user verification (UV) where required', assertion(key, { flags: UP })],
    ['backed up (BS) without backup eligibility (BE)', assertion(key, { flags: UP | UV | BS })],
    ['a signature that does not verify', tampered],
    ['a signature by another key', otherSigner],
    [
      'a signature that is not DER',
      { ...valid, response: { ...valid.response, signature: b64u(Buffer.alloc(64, 1)) } },
    ],
  ];
}

describe('ES256 assertions verified by node:crypto directly, as the library verifies them', () => {
  it('accepts a valid assertion exactly as the library does (counter, UV), with and without UV required', async () => {
    for (const [response, uvRequired] of [
      [assertion(key, { counter: 41 }), true],
      [assertion(key, { flags: UP, counter: 0 }), false],
      [assertion(key, { flags: UP | UV | BE | BS }), true],
      [assertion(key, { crossOrigin: true }), true],
      [assertion(key, { tokenBinding: { status: 'supported' } }), true],
    ] as const) {
      const mine = await fast(key, response, uvRequired);
      expect(mine).toEqual(await library(key, response, uvRequired));
      expect(mine).toMatchObject({ verified: true });
    }
    expect(await fast(key, assertion(key, { counter: 41 }))).toEqual({
      verified: true,
      newCounter: 41,
      userVerified: true,
    });
  });

  it.each(violations())('refuses %s, as the library does', async (_what, response) => {
    const mine = await fast(key, response);
    const theirs = await library(key, response);
    const refusedOrFalse = (r: unknown) =>
      typeof (r as { refused?: unknown }).refused === 'string' ||
      (r as { verified?: unknown }).verified === false;
    expect(refusedOrFalse(theirs)).toBe(true);
    expect(refusedOrFalse(mine)).toBe(true);
    const error = await verifyAssertion({
      rp,
      response,
      expectedChallenge: CHALLENGE,
      device: deviceOf(key),
      requireUserVerification: true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyportError);
    expect((error as KeyportError).code).toMatch(/^(MFA_FAILED|INVALID_ARGUMENT)$/);
  });

  it('imports a key once per credential, and a credential whose stored key changed is checked with the new key', async () => {
    const first = es256Key();
    const second = es256Key();
    expect(await fast(first, assertion(first))).toMatchObject({ verified: true });
    // Same credential id, another stored key: the first key's assertion no longer verifies.
    expect(await fast(second, assertion(first))).toMatchObject({ verified: false });
    expect(await fast(second, assertion(second))).toMatchObject({ verified: true });
  });

  it('leaves any other algorithm (Ed25519) to the library, which verifies it', async () => {
    const ed = ed25519Key();
    const response = assertion(ed);
    expect(await fast(ed, response)).toBeUndefined();
    const outcome = await verifyAssertion({
      rp,
      response,
      expectedChallenge: CHALLENGE,
      device: deviceOf(ed),
      requireUserVerification: true,
    });
    expect(outcome).toEqual({ ok: true, newCounter: 7, userVerified: true });
    const refused = await verifyAssertion({
      rp,
      response: assertion(ed, { flags: UP }),
      expectedChallenge: CHALLENGE,
      device: deviceOf(ed),
      requireUserVerification: true,
    }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'MFA_FAILED' });
  });

  it('accepts, for the web UI, exactly its configured origins: another port or a subdomain of the rp_id is refused', async () => {
    const es = es256Key();
    const webRp: RelyingParty = { ...rp, origins: ['https://example.com:3080'] };
    const answer = (origin: string) =>
      verifyAssertion({
        rp: webRp,
        response: assertion(es, { origin }),
        expectedChallenge: CHALLENGE,
        device: deviceOf(es),
        requireUserVerification: true,
      }).catch((e: unknown) => e);
    expect(await answer('https://example.com:3080')).toEqual({ ok: true, newCounter: 7, userVerified: true });
    // The gRPC API's rule (rp_id host, any port) would take these; the web UI's does not.
    for (const origin of [
      'https://example.com:3025',
      'https://example.com',
      'https://app.example.com:3080',
    ]) {
      expect(await answer(origin)).toMatchObject({
        code: 'MFA_FAILED',
        message: expect.stringContaining(origin),
      });
    }
    // Without configured origins (gRPC), the same assertions pass the rp_id rule.
    const grpc = await verifyAssertion({
      rp,
      response: assertion(es, { origin: 'https://example.com:3025' }),
      expectedChallenge: CHALLENGE,
      device: deviceOf(es),
      requireUserVerification: true,
    });
    expect(grpc).toMatchObject({ ok: true });
  });
});
