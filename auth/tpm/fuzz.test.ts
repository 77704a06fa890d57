// Properties: on random bytes and on mutations of valid encodings, every parser and verifier returns a
// value or throws only TpmFormatError / TpmRefusal — never a RangeError, TypeError or OpenSSL error —
// and each run of 2,000 inputs ends in bounded time.
import fc from 'fast-check';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../ca/x509-library';
import { checkAttestationKey, verifyEkCertificate, verifyQuote } from './attestation';
import { TpmFormatError, TpmRefusal } from './errors';
import { parseTpmsAttest, parseTpmtPublic, parseTpmtSignature, publicKeyOf, tpmName } from './structures';
import { EK_L1_PUBLIC, SWTPM_AK_PUBLIC, quoteBytes, softwareAk } from './test-support';

const RUNS = 2000;
const BOUND_MS = 30_000;

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({
    op: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff),
  }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
);

function mutate(seed: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = Uint8Array.from(seed);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + (m.op === 'insert' ? 1 : 0));
    if (m.op === 'flip' && b.length > 0) b[at]! ^= 1 << m.bit;
    else if (m.op === 'set' && b.length > 0) b[at] = m.value;
    else if (m.op === 'truncate') b = b.subarray(0, at);
    else if (m.op === 'insert') b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
  }
  return b;
}

/** Random bytes, or a valid seed with 1–6 mutations. */
const inputs = (seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 600 }),
    fc
      .tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 6 }))
      .map(([seed, ms]) => mutate(seed, ms)),
  );

function onlyTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof TpmFormatError) && !(error instanceof TpmRefusal)) throw error;
  }
}

function bounded(
  name: string,
  arbitrary: fc.Arbitrary<Uint8Array>,
  fn: (bytes: Uint8Array) => unknown,
): void {
  it(`${name}: ${RUNS} random/mutated inputs, typed errors only`, () => {
    const started = performance.now();
    fc.assert(
      fc.property(arbitrary, (bytes) => onlyTyped(() => fn(bytes))),
      { numRuns: RUNS },
    );
    expect(performance.now() - started).toBeLessThan(BOUND_MS);
  });
}

const ecc = softwareAk('ecc');
const rsa = softwareAk('rsassa');
const nonce = new Uint8Array(32).fill(3);
const attest = quoteBytes(nonce);
const eccSig = ecc.sign(attest);
const rsaSig = rsa.sign(attest);
const publics = [SWTPM_AK_PUBLIC, EK_L1_PUBLIC, ecc.publicBytes, rsa.publicBytes];

describe('fuzz: auth/tpm parsers', () => {
  bounded('parseTpmtPublic', inputs(publics), (b) => parseTpmtPublic(b, 'ak_public'));
  bounded('publicKeyOf', inputs(publics), (b) => publicKeyOf(parseTpmtPublic(b, 'ak_public')));
  bounded('tpmName', inputs(publics), (b) => tpmName(b));
  bounded('checkAttestationKey', inputs(publics), (b) => checkAttestationKey(b));
  bounded('parseTpmsAttest', inputs([attest]), (b) => parseTpmsAttest(b, 'attest'));
  bounded('parseTpmtSignature', inputs([eccSig, rsaSig]), (b) => parseTpmtSignature(b, 'signature'));
  bounded('verifyQuote (attest)', inputs([attest]), (b) =>
    verifyQuote({ akPublic: ecc.publicBytes, attest: b, signature: eccSig, nonce }),
  );
  bounded('verifyQuote (signature)', inputs([eccSig, rsaSig]), (b) =>
    verifyQuote({ akPublic: rsa.publicBytes, attest, signature: b, nonce }),
  );
  bounded('verifyQuote (AK)', inputs(publics), (b) =>
    verifyQuote({ akPublic: b, attest, signature: eccSig, nonce }),
  );

  describe('verifyEkCertificate', () => {
    let der = new Uint8Array();
    let caPem = '';
    beforeAll(async () => {
      const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
      const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const keys = {
        privateKey: await webcrypto.subtle.importKey(
          'pkcs8',
          pair.privateKey.export({ type: 'pkcs8', format: 'der' }),
          alg,
          false,
          ['sign'],
        ),
        publicKey: await webcrypto.subtle.importKey(
          'spki',
          pair.publicKey.export({ type: 'spki', format: 'der' }),
          alg,
          true,
          ['verify'],
        ),
      };
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        name: 'CN=CA',
        keys,
        signingAlgorithm: alg,
        extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
      });
      der = new Uint8Array(cert.rawData);
      caPem = cert.toString('pem');
    });

    it(`${RUNS} mutated certificates, typed errors only`, () => {
      const started = performance.now();
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) =>
          onlyTyped(() => verifyEkCertificate(mutate(der, ms), [caPem], new Date())),
        ),
        { numRuns: RUNS },
      );
      expect(performance.now() - started).toBeLessThan(BOUND_MS);
    });
  });
});
