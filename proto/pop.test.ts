// The proof of possession's format on its own: round trips, every claim malformed, every check violated,
// for Ed25519 and ECDSA P-256 session keys, and decodeProof fuzzed (any text is a proof or a typed refusal).
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyportError } from './errors';
import {
  base64url,
  checkProof,
  decodeProof,
  digestOf,
  encodeProof,
  nonceExpiresMs,
  POP_MAX_LENGTH,
  POP_WINDOW_MS,
  PopRefused,
} from './pop';
import type { PopClaims, PopRefusal, ProofExpectations } from './pop';

const NOW = 1_700_000_000_000;
const METHOD = '/keyport.v1.UserService/GetStatus';
const REQUEST = Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]);
const CERTIFICATE = Buffer.from('a certificate DER stands here');

interface SessionKey {
  type: 'ed25519' | 'p256';
  publicKey: KeyObject;
  sign(data: Buffer): Promise<Buffer>;
}

function sessionKey(type: SessionKey['type']): SessionKey {
  const pair =
    type === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    type,
    publicKey: pair.publicKey,
    // A PIV card answers ECDSA in DER; Node's default for EC keys is DER too.
    sign: async (data) => sign(type === 'ed25519' ? null : 'sha256', data, pair.privateKey),
  };
}

const claimsFor = (overrides: Partial<PopClaims> = {}): PopClaims => ({
  m: METHOD,
  h: digestOf(REQUEST),
  t: NOW,
  n: base64url(randomBytes(16)),
  c: digestOf(CERTIFICATE),
  ...overrides,
});

const expected = (overrides: Partial<ProofExpectations> = {}): ProofExpectations => ({
  method: METHOD,
  requestDigest: digestOf(REQUEST),
  certificateDigest: digestOf(CERTIFICATE),
  nowMs: NOW,
  ...overrides,
});

/** The refusal's reason, or 'accepted'. */
function outcome(run: () => unknown): PopRefusal | 'accepted' {
  try {
    run();
    return 'accepted';
  } catch (error) {
    if (error instanceof PopRefused) return error.reason;
    throw error;
  }
}

/** A proof whose payload is `json` as given (not necessarily claims), validly signed. */
async function proofOfPayload(json: string, key: SessionKey): Promise<string> {
  const payload = Buffer.from(json, 'utf8').toString('base64url');
  const signature = await key.sign(Buffer.from(`keyport-pop-v1.${payload}`, 'ascii'));
  return `v1.${payload}.${signature.toString('base64url')}`;
}

describe.each(['ed25519', 'p256'] as const)('a proof signed by a %s session key', (type) => {
  const key = sessionKey(type);

  it('round-trips: decoded claims are the ones signed, and every check passes', async () => {
    const claims = claimsFor();
    const text = await encodeProof(claims, key.sign);
    expect(text).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(text.length).toBeLessThanOrEqual(POP_MAX_LENGTH);
    const proof = decodeProof(text);
    expect(proof.claims).toEqual(claims);
    expect(proof.signedBytes.toString('ascii')).toBe(`keyport-pop-v1.${text.split('.')[1]}`);
    expect(() => checkProof(proof, expected(), key.publicKey)).not.toThrow();
  });

  it('accepts a time up to the window away, past and future, and refuses one a millisecond more as stale', async () => {
    for (const [t, reason] of [
      [NOW - POP_WINDOW_MS, 'accepted'],
      [NOW + POP_WINDOW_MS, 'accepted'],
      [NOW - POP_WINDOW_MS - 1, 'stale'],
      [NOW + POP_WINDOW_MS + 1, 'stale'],
      [NOW - 24 * 3600_000, 'stale'],
    ] as const) {
      const proof = decodeProof(await encodeProof(claimsFor({ t }), key.sign));
      expect(outcome(() => checkProof(proof, expected(), key.publicKey))).toBe(reason);
    }
  });

  it('refuses a proof made for another method, request or certificate', async () => {
    const proof = decodeProof(await encodeProof(claimsFor(), key.sign));
    expect(
      outcome(() => checkProof(proof, expected({ method: '/keyport.v1.UserService/Ping' }), key.publicKey)),
    ).toBe('method');
    expect(
      outcome(() =>
        checkProof(proof, expected({ requestDigest: digestOf(Buffer.from([0x0a, 0x00])) }), key.publicKey),
      ),
    ).toBe('request');
    expect(
      outcome(() =>
        checkProof(proof, expected({ certificateDigest: digestOf(Buffer.from('another')) }), key.publicKey),
      ),
    ).toBe('certificate');
  });

  it("refuses a proof signed by another key than the certificate's, of either type", async () => {
    const claims = claimsFor();
    for (const other of [sessionKey('ed25519'), sessionKey('p256')]) {
      const proof = decodeProof(await encodeProof(claims, other.sign));
      expect(outcome(() => checkProof(proof, expected(), key.publicKey))).toBe('signature');
    }
  });

  it('refuses a signature over other bytes: another proof’s, or these claims without the domain', async () => {
    const claims = claimsFor();
    const text = await encodeProof(claims, key.sign);
    const [version, payload] = text.split('.');
    // A genuine signature from another proof of the same key, spliced onto these claims.
    const another = await encodeProof(claimsFor({ n: base64url(randomBytes(16)) }), key.sign);
    const spliced = `${version}.${payload}.${another.split('.')[2]}`;
    expect(outcome(() => checkProof(decodeProof(spliced), expected(), key.publicKey))).toBe('signature');
    // The key's signature over the claims' bytes alone (no domain prefix) does not stand for a proof.
    const bare = await key.sign(Buffer.from(payload!, 'ascii'));
    const undomained = `${version}.${payload}.${bare.toString('base64url')}`;
    expect(outcome(() => checkProof(decodeProof(undomained), expected(), key.publicKey))).toBe('signature');
    // A flipped bit anywhere in the signature.
    const signature = Buffer.from(text.split('.')[2]!, 'base64url');
    signature[signature.length - 5]! ^= 0x01;
    const flipped = `${version}.${payload}.${signature.toString('base64url')}`;
    expect(outcome(() => checkProof(decodeProof(flipped), expected(), key.publicKey))).toBe('signature');
  });

  it('checks in order: method, request, certificate, time, then the signature', async () => {
    const other = sessionKey(type);
    const proof = decodeProof(await encodeProof(claimsFor({ t: NOW - 10 * POP_WINDOW_MS }), other.sign));
    const wrongAll = expected({
      method: '/keyport.v1.UserService/Ping',
      requestDigest: digestOf(Buffer.from('x')),
      certificateDigest: digestOf(Buffer.from('y')),
    });
    expect(outcome(() => checkProof(proof, wrongAll, key.publicKey))).toBe('method');
    expect(outcome(() => checkProof(proof, { ...wrongAll, method: METHOD }, key.publicKey))).toBe('request');
    expect(
      outcome(() =>
        checkProof(proof, expected({ certificateDigest: digestOf(Buffer.from('y')) }), key.publicKey),
      ),
    ).toBe('certificate');
    expect(outcome(() => checkProof(proof, expected(), key.publicKey))).toBe('stale');
    expect(
      outcome(() => checkProof(proof, expected({ nowMs: NOW - 10 * POP_WINDOW_MS }), key.publicKey)),
    ).toBe('signature');
  });
});

it('refuses an ECDSA signature in IEEE P1363 form (r‖s): proofs carry DER, as a PIV card answers', async () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const text = await encodeProof(claimsFor(), async (data) =>
    sign('sha256', data, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' }),
  );
  expect(outcome(() => checkProof(decodeProof(text), expected(), pair.publicKey))).toBe('signature');
});

it('keeps a nonce two windows past the proof’s time', () => {
  expect(nonceExpiresMs(claimsFor({ t: NOW }))).toBe(NOW + 2 * POP_WINDOW_MS);
});

it('says each refusal as UNAUTHENTICATED in its own words, never as resolvable by signing in again', () => {
  const reasons: PopRefusal[] = [
    'missing',
    'malformed',
    'method',
    'request',
    'certificate',
    'stale',
    'signature',
    'replayed',
  ];
  const messages = reasons.map((reason) => new PopRefused(reason));
  for (const refused of messages) {
    expect(refused).toBeInstanceOf(KeyportError);
    expect(refused.code).toBe('UNAUTHENTICATED');
    expect(refused.fields.resolvableByRelogin).toBeUndefined();
  }
  expect(new Set(messages.map((m) => m.message)).size).toBe(reasons.length);
  expect(new PopRefused('replayed').message).toMatch(/already used/);
  expect(new PopRefused('stale').message).toMatch(/clock/);
});

describe('decodeProof', () => {
  const key = sessionKey('p256');

  it('says a missing proof is missing, not malformed', () => {
    expect(outcome(() => decodeProof(undefined))).toBe('missing');
    expect(outcome(() => decodeProof(''))).toBe('missing');
  });

  it('refuses a proof whose frame is wrong: version, parts, alphabet, length, signature size', async () => {
    const good = await encodeProof(claimsFor(), key.sign);
    const [, payload, signature] = good.split('.') as [string, string, string];
    const frames = [
      `v2.${payload}.${signature}`,
      `V1.${payload}.${signature}`,
      `${payload}.${signature}`,
      `v1.${payload}`,
      `v1.${payload}.${signature}.`,
      `v1.${payload}.${signature}.extra`,
      `v1..${signature}`,
      `v1.${payload}.`,
      `v1.${payload}=.${signature}`,
      `v1.${payload}.${signature}=`,
      `v1.${payload.replace(/.$/, '+')}.${signature}`,
      `v1.${payload}.${signature.replace(/^./, '/')}`,
      ` ${good}`,
      `${good}\n`,
      `v1.${payload}.${base64url(randomBytes(7))}`,
      `v1.${payload}.${base64url(randomBytes(81))}`,
      `v1.${payload}.${'A'.repeat(POP_MAX_LENGTH)}`,
      `v1.${'A'.repeat(POP_MAX_LENGTH)}.${signature}`,
    ];
    for (const text of frames) expect([text, outcome(() => decodeProof(text))]).toEqual([text, 'malformed']);
  });

  it('refuses a payload that is not a JSON object of exactly the five claims', async () => {
    for (const json of [
      '',
      'not json',
      '[]',
      'null',
      '"claims"',
      '42',
      JSON.stringify([claimsFor()]),
      JSON.stringify({ ...claimsFor(), x: 1 }),
      '{"__proto__":{},' + JSON.stringify(claimsFor()).slice(1),
    ]) {
      const text = await proofOfPayload(json, key);
      expect([json, outcome(() => decodeProof(text))]).toEqual([json, 'malformed']);
    }
  });

  it('refuses every claim missing, of another type or of the wrong shape', async () => {
    const good = claimsFor();
    const bad: Record<keyof PopClaims, unknown[]> = {
      m: [
        undefined,
        null,
        42,
        '',
        'GetStatus',
        'keyport.v1.UserService/GetStatus',
        '/keyport.v2.UserService/GetStatus',
        '/other.v1.UserService/GetStatus',
        '/keyport.v1.UserService/GetStatus/',
        '/keyport.v1.UserService/Get-Status',
        '/keyport.v1.UserService/GetStatus\n',
        '/keyport.v1.User Service/GetStatus',
      ],
      h: [
        undefined,
        null,
        [],
        good.h.slice(1),
        `${good.h}A`,
        `${good.h.slice(1)}+`,
        good.h.toLowerCase() + '=',
        7,
      ],
      c: [undefined, {}, good.c.slice(2), `${good.c}==`, Buffer.from(CERTIFICATE).toString('hex')],
      n: [undefined, 1, '', 'A'.repeat(21), 'A'.repeat(23), `${'A'.repeat(21)}=`, `${'A'.repeat(21)}/`],
      t: [undefined, null, '1700000000000', 0, -1, 1.5, NOW + 0.5, 2 ** 53, Number.MAX_VALUE, true],
    };
    for (const [claim, values] of Object.entries(bad) as [keyof PopClaims, unknown[]][]) {
      for (const value of values) {
        const claims: Record<string, unknown> = { ...good, [claim]: value };
        if (value === undefined) delete claims[claim];
        const text = await proofOfPayload(JSON.stringify(claims), key);
        expect([claim, value, outcome(() => decodeProof(text))]).toEqual([claim, value, 'malformed']);
      }
    }
  });

  it('turns any text into a decoded proof or a PopRefused, and nothing else (fuzz)', async () => {
    const valid = await encodeProof(claimsFor(), key.sign);
    const decoded = (text: string) => {
      try {
        const proof = decodeProof(text);
        return proof.signature.length >= 8 && Buffer.isBuffer(proof.signedBytes);
      } catch (error) {
        return error instanceof PopRefused && ['missing', 'malformed'].includes(error.reason);
      }
    };
    fc.assert(fc.property(fc.string({ maxLength: 2 * POP_MAX_LENGTH }), decoded), { numRuns: 2000 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), decoded), { numRuns: 1000 });
    // Near-valid texts: the good proof with characters replaced, inserted or cut.
    fc.assert(
      fc.property(
        fc.nat({ max: valid.length - 1 }),
        fc.nat({ max: 3 }),
        fc.string({ maxLength: 4 }),
        (at, cut, insert) => decoded(valid.slice(0, at) + insert + valid.slice(at + cut)),
      ),
      { numRuns: 2000 },
    );
    // Payloads of arbitrary JSON, framed and signed like a proof.
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (json) =>
        decoded(await proofOfPayload(JSON.stringify(json), key)),
      ),
      { numRuns: 300 },
    );
    // Claims whose every value is drawn at random, each of them a string or a number.
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          m: fc.oneof(fc.string(), fc.constant(METHOD)),
          h: fc.oneof(fc.string({ minLength: 43, maxLength: 43 }), fc.constant(digestOf(REQUEST))),
          t: fc.oneof(fc.integer(), fc.double(), fc.constant(NOW)),
          n: fc.oneof(fc.string({ minLength: 22, maxLength: 22 }), fc.base64String()),
          c: fc.string(),
        }),
        async (claims) => decoded(await proofOfPayload(JSON.stringify(claims), key)),
      ),
      { numRuns: 300 },
    );
  });
});
