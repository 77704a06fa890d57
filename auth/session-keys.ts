// The keys and TTL a login asks certificates for, checked (INVALID_ARGUMENT naming the field): the local
// login's step two, and the SSO ceremony's start, redemption and security-key check.
import { KeyportError } from '../proto/errors';
import { parseSshPublicKeyOf, sshPublicKeyOfClientKey } from './ca/ssh';
import type { SshPublicKey } from './ca/ssh';
import { parseClientPublicKey } from './ca/spki';
import type { ClientPublicKey } from './ca/spki';
import type { SessionKeys } from './certificates';

const MAX_REQUESTED_TTL_SECONDS = 365 * 24 * 60 * 60;

/** The session's keys to certify: the TLS key (PEM), and the SSH key line or the same key. */
export function parseSessionKeys(tlsPublicKey: string, sshPublicKey: string): SessionKeys {
  const tls = parseTlsPublicKey(tlsPublicKey);
  const tlsKeyAsSsh = sshPublicKeyOfClientKey(tls);
  const ssh = sshPublicKey ? parseSshPublicKeyField(sshPublicKey, tlsKeyAsSsh) : tlsKeyAsSsh;
  return { ssh, tls };
}

/** A requested session TTL in seconds (0: the default), checked. */
export function parseTtlSeconds(value: number | bigint | string): number {
  const ttlSeconds = Number(value);
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > MAX_REQUESTED_TTL_SECONDS) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      'The requested session TTL must be between 1 second and 1 year.',
      {
        fieldPath: 'ttl_seconds',
      },
    );
  }
  return ttlSeconds;
}

export function parseTlsPublicKey(pem: string): ClientPublicKey {
  try {
    return parseClientPublicKey(pem);
  } catch {
    throw new KeyportError('INVALID_ARGUMENT', 'The public key must be a PEM ECDSA P-256 or Ed25519 key.', {
      fieldPath: 'tls_public_key',
    });
  }
}

/** The SSH key line; the TLS key's own point is not imported a second time. */
function parseSshPublicKeyField(line: string, tlsKeyAsSsh: SshPublicKey) {
  try {
    return parseSshPublicKeyOf(line, tlsKeyAsSsh);
  } catch (error) {
    throw new KeyportError('INVALID_ARGUMENT', `The SSH public key is invalid: ${(error as Error).message}`, {
      fieldPath: 'ssh_public_key',
    });
  }
}
