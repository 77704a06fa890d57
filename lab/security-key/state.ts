// The soft key's persistent state: one JSON file, replaced atomically (temp file + fsync + rename, 0600),
// so a crash mid-write leaves either the old state or the new one.
//
// THIS IS A LAB DEVICE. Credential private keys are stored in the file as PKCS#8 and the PIN as
// LEFT(SHA-256(PIN), 16) exactly as CTAP keeps it; a real authenticator keeps them in a secure element.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { StoredAttestation } from './attestation-ca';

export const STATE_VERSION = 1;
export const MAX_PIN_RETRIES = 8;

export interface StoredCredential {
  /** base64url credential ID. */
  id: string;
  rpId: string;
  /** Discoverable (resident) credential; non-resident ones are kept too, so the allowList can find them. */
  rk: boolean;
  /** base64url user handle; present for resident credentials. */
  userId?: string;
  userName?: string;
  userDisplayName?: string;
  /** PKCS#8 PEM of the ES256 key. */
  privateKeyPem: string;
  createdAt: string;
}

export interface SoftKeyState {
  version: typeof STATE_VERSION;
  aaguid: string;
  /** One global signature counter, as many hardware keys do. */
  signCount: number;
  /** hex LEFT(SHA-256(PIN), 16) and the retries left (CTAP 2.1 §6.5.2.2). */
  pin: { hash: string; retries: number } | null;
  credentials: StoredCredential[];
  attestation: StoredAttestation;
}

export class StateFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StateFileError';
  }
}

/** undefined when the file does not exist. */
export function readState(path: string): SoftKeyState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateFileError(`cannot read the security key state ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(`${path} is not JSON`, { cause: err });
  }
  if (!isState(state))
    throw new StateFileError(`${path} is not a Keyport lab security key state (version 1)`);
  return state;
}

export function writeState(path: string, state: SoftKeyState): void {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (err) {
    unlinkSync(temp);
    throw err;
  }
}

function isState(value: unknown): value is SoftKeyState {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  return (
    s.version === STATE_VERSION &&
    typeof s.aaguid === 'string' &&
    typeof s.signCount === 'number' &&
    Array.isArray(s.credentials) &&
    typeof s.attestation === 'object' &&
    s.attestation !== null &&
    (s.pin === null ||
      (typeof s.pin === 'object' &&
        typeof (s.pin as Record<string, unknown>).hash === 'string' &&
        typeof (s.pin as Record<string, unknown>).retries === 'number'))
  );
}
