// A call authenticated by proof of possession instead of mTLS (a session key that cannot do a TLS
// handshake, such as a PIV card's): the call carries its session certificate and a proof signed by that
// certificate's key over this call (proto/pop.ts). Every check that needs no storage runs first, so a proof
// that fails one writes nothing; only then is its nonce spent, in one statement shared by every replica.
import type { KeyObject } from 'node:crypto';
import { checkProof, decodeProof, nonceExpiresMs, PopRefused } from '../proto/pop';
import type { ServiceContext } from './context';
import type { CallContext } from './rpc';

/** The certificate a call carries, already verified against the cluster CA (identity.ts). */
export interface PresentedCertificate {
  /** base64url SHA-256 of its DER, as a proof's `c` claim names it. */
  digest: string;
  /** Its subject public key, parsed once when the certificate was verified. */
  publicKey: KeyObject;
}

/**
 * Checks the call's proof against the call (method, request bytes as received), the certificate (digest,
 * key) and the service's clock, then spends its nonce. Throws PopRefused with the reason.
 */
export async function proveCallPossession(
  ctx: ServiceContext,
  call: CallContext,
  certificate: PresentedCertificate,
): Promise<void> {
  const proof = decodeProof(call.proof);
  const nowMs = ctx.now();
  const requestDigest = call.requestDigest();
  if (requestDigest === undefined) throw new PopRefused('request');
  checkProof(
    proof,
    { method: call.method, requestDigest, certificateDigest: certificate.digest, nowMs },
    certificate.publicKey,
  );
  if (!(await ctx.store.spendPopNonce(proof.claims.n, nonceExpiresMs(proof.claims), nowMs))) {
    throw new PopRefused('replayed');
  }
}
