// A passkey's assertion made in software, as an authenticator with the passkey's private key would sign it
// (the lab soft key's state holds that key): what the benchmarks send where a CTAP ceremony per login would
// time the soft key, not the cluster.
import { createHash, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

export interface LoadUser {
  user: string;
  /** base64url credential ID and user handle, and the ES256 key's PKCS#8 PEM (the soft key's state). */
  credentialId: string;
  userHandle: string;
  privateKeyPem: string;
}

// WebAuthn authenticator data flags: user present, user verified (the PIN, for a passkey).
const FLAGS_UP_UV = 0x01 | 0x04;

function authenticatorData(rpId: string, signCount: number): Buffer {
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(signCount >>> 0);
  return Buffer.concat([createHash('sha256').update(rpId).digest(), Buffer.of(FLAGS_UP_UV), counter]);
}

/** A passkey's assertion with user verification, as the WebAuthn JSON a browser or the client sends. */
export function makeAssertion(
  user: LoadUser,
  key: KeyObject,
  options: { challenge: string; rpId: string },
  origin: string,
  signCount: number,
) {
  const clientData = Buffer.from(
    JSON.stringify({ type: 'webauthn.get', challenge: options.challenge, origin, crossOrigin: false }),
  );
  const authData = authenticatorData(options.rpId, signCount);
  const signature = sign(
    'sha256',
    Buffer.concat([authData, createHash('sha256').update(clientData).digest()]),
    key,
  );
  return {
    id: user.credentialId,
    rawId: user.credentialId,
    type: 'public-key' as const,
    clientExtensionResults: {},
    response: {
      clientDataJSON: clientData.toString('base64url'),
      authenticatorData: authData.toString('base64url'),
      signature: signature.toString('base64url'),
      userHandle: user.userHandle,
    },
  };
}
