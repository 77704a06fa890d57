// CollectedClientData (WebAuthn L3 §5.8.1) and its serialization (§5.8.1.1), pure.
import { createHash } from 'node:crypto';
import type { Base64URLString } from './types';

export type ClientDataType = 'webauthn.create' | 'webauthn.get';

export interface ClientDataInput {
  type: ClientDataType;
  /** The challenge exactly as the relying party sent it (base64url, no padding). */
  challenge: Base64URLString;
  /** `https://<cluster public host[:port]>` */
  origin: string;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * The JSON-compatible serialization of §5.8.1.1: members in the order type, challenge, origin,
 * crossOrigin, each value a JSON string (CCDToString) and crossOrigin `false` — what a browser on the
 * top-level `origin` sends. JSON.stringify escapes strings the way CCDToString does for these values.
 */
export function clientDataJSON(input: ClientDataInput): Uint8Array {
  if (input.type !== 'webauthn.create' && input.type !== 'webauthn.get')
    throw new TypeError(`clientData type must be webauthn.create or webauthn.get, not ${String(input.type)}`);
  if (!input.challenge || !BASE64URL.test(input.challenge))
    throw new TypeError('The WebAuthn challenge must be base64url without padding.');
  originHost(input.origin);
  const json =
    `{"type":${JSON.stringify(input.type)},"challenge":${JSON.stringify(input.challenge)},` +
    `"origin":${JSON.stringify(input.origin)},"crossOrigin":false}`;
  return new Uint8Array(Buffer.from(json, 'utf8'));
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** `https://host[:port]` with nothing else: the origin of the cluster's public address. */
export function originFor(publicAddress: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(publicAddress) ? publicAddress : `https://${publicAddress}`;
  const url = new URL(withScheme);
  if (url.protocol !== 'https:') throw new TypeError('A WebAuthn origin is https.');
  return url.origin;
}

/** The host of an https origin (the default RP ID when the options name none). */
export function originHost(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new TypeError(`Not an origin: ${origin}`);
  }
  if (url.protocol !== 'https:' || url.origin !== origin)
    throw new TypeError(`A WebAuthn origin is https://host[:port] with no path, not ${origin}`);
  return url.hostname;
}
