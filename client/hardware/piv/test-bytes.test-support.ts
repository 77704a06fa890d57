// Byte helpers and a fixture certificate for the PIV byte-level tests.
import { expect } from 'vitest';
import { PivError } from './errors';
import type { PivErrorReason } from './errors';

/** Hex with optional spaces → bytes. */
export function h(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

/** Runs `fn` and returns the PivError it throws; fails the test if it throws anything else or nothing. */
export function pivErrorOf(fn: () => unknown): PivError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PivError);
    return error as PivError;
  }
  throw new Error('expected a PivError, nothing was thrown');
}

export function expectReason(fn: () => unknown, reason: PivErrorReason): PivError {
  const error = pivErrorOf(fn);
  expect(error.reason).toBe(reason);
  return error;
}

/** A self-signed P-256 certificate (openssl req -x509, CN=keyport piv fixture), 407 bytes of DER. */
export const FIXTURE_CERT_PEM = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUS57tsH7hOeg7hd5k9rLd53t9xPIwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTa2V5cG9ydCBwaXYgZml4dHVyZTAgFw0yNjEyMDYyMjM5MDBa
GA8yMTI2MTExMjIyMzkwMFowHjEcMBoGA1UEAwwTa2V5cG9ydCBwaXYgZml4dHVy
ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAMTaCajnuZd43f1sseV0w/ve5vR
hgc0gUWrGkte1aauF0LslVg98rq+zRyKGeJJ1skOTdXlMXQwJg0Q/n9GUpWjUzBR
MB0GA1UdDgQWBBTEY8kaVcZcPXAUkC/ODBCtPAro7TAfBgNVHSMEGDAWgBTEY8ka
VcZcPXAUkC/ODBCtPAro7TAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIHI8Ej+HMJHPcSVahRd9Wuy7lPstLR95JM1uytHXBv4WAiEA9rKpVlDCFc58
v37dhIaCICyHVojrx2onG0wfgo/Z8Hk=
-----END CERTIFICATE-----
`;

export const FIXTURE_CERT_DER = Uint8Array.from(
  Buffer.from(FIXTURE_CERT_PEM.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'),
);
