// TOTP (RFC 6238) through otpauth: SHA-1, 6 digits, 30 s, as authenticator apps expect.
import { Secret, TOTP } from 'otpauth';

const PERIOD_SECONDS = 30;
const DIGITS = 6;
/** One step either side tolerates clock drift between the phone and the server. */
const DRIFT_WINDOW = 1;

export interface TotpEnrollment {
  secret: string;
  otpauthUri: string;
  digits: number;
  periodSeconds: number;
  algorithm: string;
}

function totp(secretBase32: string, label = 'keyport', issuer = 'Keyport'): TOTP {
  return new TOTP({
    issuer,
    label,
    algorithm: 'SHA1',
    digits: DIGITS,
    period: PERIOD_SECONDS,
    secret: Secret.fromBase32(secretBase32),
  });
}

/** A fresh random secret (160 bits, as RFC 4226 recommends), base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

export function newTotpEnrollment(user: string, clusterName: string): TotpEnrollment {
  return totpEnrollment(user, clusterName, newTotpSecret());
}

/** What an authenticator app needs for `secret`: the otpauth:// URI and its parameters. */
export function totpEnrollment(user: string, clusterName: string, secret: string): TotpEnrollment {
  return {
    secret,
    otpauthUri: totp(secret, user, `Keyport ${clusterName}`).toString(),
    digits: DIGITS,
    periodSeconds: PERIOD_SECONDS,
    algorithm: 'SHA1',
  };
}

/** The time step the code belongs to, or undefined when it matches none in the drift window. */
export function totpStepOf(secretBase32: string, code: string, nowMs: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = totp(secretBase32).validate({ token: code, timestamp: nowMs, window: DRIFT_WINDOW });
  if (delta === null) return undefined;
  return Math.floor(nowMs / 1000 / PERIOD_SECONDS) + delta;
}

/** The code for a secret at a time: for the lab's demo and tests, which play the person's phone. */
export function totpCode(secretBase32: string, nowMs: number): string {
  return totp(secretBase32).generate({ timestamp: nowMs });
}
