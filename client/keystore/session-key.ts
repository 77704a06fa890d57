import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

export type SessionKeyAlgorithm = 'ecdsa-p256' | 'ed25519';

export interface SessionKey {
  /** PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"): goes to the KeyStore, nowhere else. */
  privateKeyPem: string;
  /** SPKI PEM ("-----BEGIN PUBLIC KEY-----"): for the X.509 client certificate request. */
  publicKeyPem: string;
  /** authorized_keys form ("ssh-ed25519 AAAA…"): for the OpenSSH user certificate request. */
  sshPublicKey: string;
}

/** The public key in the terms of the SSH wire format. */
export type SshPublicKeyParts =
  | { algorithm: 'ssh-ed25519'; publicKey: Uint8Array }
  | { algorithm: 'ecdsa-sha2-nistp256'; uncompressedPoint: Uint8Array };

export function generateSessionKey(algorithm: SessionKeyAlgorithm): SessionKey {
  const { privateKey, publicKey } =
    algorithm === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sshPublicKey: formatSshPublicKey(sshPublicKeyParts(publicKey)),
  };
}

/** The authorized_keys line for the public half of a PKCS#8 (or SEC1 / PKCS#1-style) private key PEM. */
export function sshPublicKeyFromPrivatePem(privateKeyPem: string): string {
  return formatSshPublicKey(sshPublicKeyParts(createPublicKey(createPrivateKey(privateKeyPem))));
}

export function sshPublicKeyParts(publicKey: KeyObject): SshPublicKeyParts {
  const jwk = publicKey.export({ format: 'jwk' });
  if (publicKey.asymmetricKeyType === 'ed25519' && jwk.x) {
    return { algorithm: 'ssh-ed25519', publicKey: Buffer.from(jwk.x, 'base64url') };
  }
  if (publicKey.asymmetricKeyType === 'ec' && jwk.crv === 'P-256' && jwk.x && jwk.y) {
    return {
      algorithm: 'ecdsa-sha2-nistp256',
      uncompressedPoint: Buffer.concat([
        Buffer.of(0x04),
        Buffer.from(jwk.x, 'base64url'),
        Buffer.from(jwk.y, 'base64url'),
      ]),
    };
  }
  const kind = publicKey.asymmetricKeyType === 'ec' ? `ec ${jwk.crv ?? '?'}` : publicKey.asymmetricKeyType;
  throw new TypeError(`Unsupported session key type ${kind ?? 'unknown'}: expected Ed25519 or ECDSA P-256.`);
}

/** `<algorithm> <base64 wire blob>`, the authorized_keys / .pub form. Pure. */
export function formatSshPublicKey(parts: SshPublicKeyParts): string {
  return `${parts.algorithm} ${Buffer.from(encodeSshPublicKeyBlob(parts)).toString('base64')}`;
}

/**
 * The SSH public key wire encoding (RFC 4253 §6.6: string algorithm name, then key data). Pure.
 * - RFC 8709 §4: string "ssh-ed25519", string key (32 bytes).
 * - RFC 5656 §3.1: string "ecdsa-sha2-nistp256", string "nistp256", string Q (SEC1 uncompressed point).
 */
export function encodeSshPublicKeyBlob(parts: SshPublicKeyParts): Uint8Array {
  if (parts.algorithm === 'ssh-ed25519') {
    if (parts.publicKey.length !== 32) throw new TypeError('An Ed25519 public key is 32 bytes.');
    return concatBytes([sshString(parts.algorithm), sshString(parts.publicKey)]);
  }
  if (parts.uncompressedPoint.length !== 65 || parts.uncompressedPoint[0] !== 0x04) {
    throw new TypeError('A P-256 public key is a 65-byte uncompressed point (0x04 || X || Y).');
  }
  return concatBytes([sshString(parts.algorithm), sshString('nistp256'), sshString(parts.uncompressedPoint)]);
}

/** RFC 4251 §5 "string": uint32 big-endian length, then the bytes. Pure. */
export function sshString(value: string | Uint8Array): Uint8Array {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length, false);
  out.set(bytes, 4);
  return out;
}

export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
