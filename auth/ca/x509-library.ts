// The one place that loads @peculiar/x509: reflect-metadata (which its DI container needs) must be evaluated before the library (ES modules run
// their imports in source order), and the library must be pointed at Node's WebCrypto.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { randomPooled } from '../random';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

export const ECDSA_P256_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** RFC 5280 §4.1.2.2: a positive integer of at most 20 octets. */
export const MAX_CERTIFICATE_SERIAL = (1n << 159n) - 1n;

export function randomCertificateSerial(): bigint {
  for (;;) {
    const serial = BigInt(`0x${randomPooled(16).toString('hex')}`);
    if (serial !== 0n) return serial;
  }
}

/** The hex of the DER INTEGER contents: a leading zero octet keeps a high first bit from reading as negative. */
export function serialToHex(serial: bigint): string {
  const hex = serial.toString(16);
  const even = hex.length % 2 === 0 ? hex : `0${hex}`;
  return Number.parseInt(even.slice(0, 1), 16) >= 8 ? `00${even}` : even;
}
