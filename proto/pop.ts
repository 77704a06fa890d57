// A per-call proof of possession of the session key, in the spirit of RFC 9449 (DPoP): for a session key
// that cannot do a TLS client handshake (a PIV card: Node's TLS and Electron's BoringSSL need the private
// key in process), each call carries its certificate and a proof signed by the session key over
//   m  the call's method path ("/keyport.v1.UserService/GetStatus"),
//   h  SHA-256 of the request message as sent (its protobuf bytes),
//   t  the client's time (ms), which the server accepts within POP_WINDOW_MS of its own,
//   n  a random nonce, which the server refuses to see twice within its window (stored: every replica),
//   c  SHA-256 of the certificate's DER, so a proof never stands for another certificate.
// The certificate names the key: only that key's signature verifies, so a software key cannot stand in for
// the card. This module is the format alone, shared by the client (which builds proofs) and keyport-auth
// (which checks them): pure, no I/O, no clock of its own.
//
// Wire form (ASCII metadata `keyport-pop`): `v1.<base64url(JSON claims)>.<base64url(signature)>`, the
// signature over the ASCII bytes `keyport-pop-v1.<base64url(JSON claims)>`: ECDSA P-256 with SHA-256 (DER,
// as a PIV card answers it) or Ed25519.
import { createHash, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { KeyportError } from './errors';

/** ASCII metadata: the proof. */
export const POP_METADATA_KEY = 'keyport-pop';
/** Binary metadata (gRPC `-bin` keys carry bytes): the session certificate's DER. */
export const POP_CERTIFICATE_METADATA_KEY = 'keyport-cert-bin';
/** How far the client's time may be from the server's; a nonce is kept twice as long. */
export const POP_WINDOW_MS = 60_000;
/** The longest proof accepted (claims ≈ 200 bytes, an ECDSA signature ≤ 72 bytes). */
export const POP_MAX_LENGTH = 1024;

const VERSION = 'v1';
const DOMAIN = 'keyport-pop-v1.';
const NONCE = /^[A-Za-z0-9_-]{22}$/;
const DIGEST = /^[A-Za-z0-9_-]{43}$/;
const METHOD = /^\/keyport\.v1\.[A-Za-z]+\/[A-Za-z]+$/;

export interface PopClaims {
  /** The method path. */
  m: string;
  /** base64url SHA-256 of the request bytes. */
  h: string;
  /** The client's time, ms since the epoch. */
  t: number;
  /** 16 random bytes, base64url. */
  n: string;
  /** base64url SHA-256 of the certificate DER. */
  c: string;
}

export interface DecodedProof {
  claims: PopClaims;
  /** What the signature covers. */
  signedBytes: Buffer;
  signature: Buffer;
}

/** Why a proof was refused; each is said to the caller as UNAUTHENTICATED with its own words. */
export type PopRefusal =
  'missing' | 'malformed' | 'method' | 'request' | 'certificate' | 'stale' | 'signature' | 'replayed';

const MESSAGES: Record<PopRefusal, string> = {
  missing:
    'This session signs every call (its key cannot do a TLS handshake), and this call carries no proof.',
  malformed: 'The proof of possession is malformed.',
  method: 'The proof of possession was made for another method.',
  request: 'The proof of possession was made for another request.',
  certificate: 'The proof of possession was made for another certificate.',
  stale: `The proof of possession is too old or from the future (more than ${POP_WINDOW_MS / 1000} s from the server's time): check this computer's clock.`,
  signature: "The proof of possession is not signed by the certificate's key.",
  replayed: 'The proof of possession was already used: a request was replayed.',
};

/** A refused proof, typed by its reason; never resolvable by signing in again (the key is the same). */
export class PopRefused extends KeyportError {
  constructor(readonly reason: PopRefusal) {
    super('UNAUTHENTICATED', MESSAGES[reason]);
  }
}

export const base64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/** base64url SHA-256: of a request's bytes (`h`) or a certificate's DER (`c`). */
export function digestOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url');
}

function signingInput(payload: string): Buffer {
  return Buffer.from(DOMAIN + payload, 'ascii');
}

/** The proof for `claims`, signed by `sign` (ECDSA P-256 over SHA-256 as DER, or Ed25519). */
export async function encodeProof(
  claims: PopClaims,
  sign: (data: Buffer) => Promise<Buffer>,
): Promise<string> {
  const payload = Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url');
  const signature = await sign(signingInput(payload));
  return `${VERSION}.${payload}.${signature.toString('base64url')}`;
}

/** The proof's parts, every claim checked for shape; PopRefused('malformed') otherwise. Pure. */
export function decodeProof(text: string | undefined): DecodedProof {
  if (text === undefined || text === '') throw new PopRefused('missing');
  if (text.length > POP_MAX_LENGTH) throw new PopRefused('malformed');
  const parts = text.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) throw new PopRefused('malformed');
  const [, payload = '', signatureText = ''] = parts;
  if (!/^[A-Za-z0-9_-]+$/.test(payload) || !/^[A-Za-z0-9_-]+$/.test(signatureText)) {
    throw new PopRefused('malformed');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new PopRefused('malformed');
  }
  if (!isClaims(parsed)) throw new PopRefused('malformed');
  const signature = Buffer.from(signatureText, 'base64url');
  if (signature.length < 8 || signature.length > 80) throw new PopRefused('malformed');
  return { claims: parsed, signedBytes: signingInput(payload), signature };
}

function isClaims(value: unknown): value is PopClaims {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const claims = value as Record<string, unknown>;
  if (Object.keys(claims).sort().join(',') !== 'c,h,m,n,t') return false;
  return (
    typeof claims.m === 'string' &&
    METHOD.test(claims.m) &&
    typeof claims.h === 'string' &&
    DIGEST.test(claims.h) &&
    typeof claims.c === 'string' &&
    DIGEST.test(claims.c) &&
    typeof claims.n === 'string' &&
    NONCE.test(claims.n) &&
    typeof claims.t === 'number' &&
    Number.isSafeInteger(claims.t) &&
    claims.t > 0
  );
}

export interface ProofExpectations {
  /** The path of the call that carries the proof. */
  method: string;
  /** digestOf(the request bytes as received). */
  requestDigest: string;
  /** digestOf(the certificate DER the call carries). */
  certificateDigest: string;
  /** The server's time. */
  nowMs: number;
}

/**
 * Everything about a decoded proof that needs no storage, in order: method, request, certificate, time,
 * signature (with the certificate's key). Throws PopRefused. The nonce is spent by the caller afterwards,
 * so that a proof that fails here writes nothing.
 */
export function checkProof(proof: DecodedProof, expected: ProofExpectations, key: KeyObject): void {
  const { claims } = proof;
  if (claims.m !== expected.method) throw new PopRefused('method');
  if (claims.h !== expected.requestDigest) throw new PopRefused('request');
  if (claims.c !== expected.certificateDigest) throw new PopRefused('certificate');
  if (Math.abs(claims.t - expected.nowMs) > POP_WINDOW_MS) throw new PopRefused('stale');
  const algorithm = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  let valid: boolean;
  try {
    valid = verify(algorithm, proof.signedBytes, { key, dsaEncoding: 'der' }, proof.signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new PopRefused('signature');
}

/**
 * Until when a nonce must be remembered: its proof is accepted until t + window by a replica on time, and
 * a window more covers replicas whose clocks differ by up to a window.
 */
export function nonceExpiresMs(claims: PopClaims): number {
  return claims.t + 2 * POP_WINDOW_MS;
}
