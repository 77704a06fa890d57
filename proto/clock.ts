// The clock that keyport-auth and the keyport client read: the wall clock, moved forward by a lab
// offset when one is configured. Tests of expiry move that offset instead of sleeping, so nothing they
// check races the wall clock on a loaded machine.
//
// KEYPORT_LAB_CLOCK names a file that holds a whole number of milliseconds ≥ 0; a missing file means 0.
// It is read at every reading of the clock, so a test that writes it moves a running process's time at
// once. Only forward: a lab offset can make a certificate or a challenge expire early, never live longer.
// Whoever sets a process's environment already controls that process; the variable gives nothing more.
import { readFileSync } from 'node:fs';

export type Clock = () => number;

export const LAB_CLOCK_ENV = 'KEYPORT_LAB_CLOCK';

export class LabClockError extends Error {
  override name = 'LabClockError';
}

/** Parses the offset file's text: a whole number of milliseconds, ≥ 0, with optional whitespace. */
export function parseClockOffset(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '') return 0;
  const offset = /^\d{1,15}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(offset)) {
    throw new LabClockError(
      `${LAB_CLOCK_ENV}: the offset must be whole milliseconds ≥ 0, not "${trimmed.slice(0, 40)}".`,
    );
  }
  return offset;
}

function readOffset(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  return parseClockOffset(text);
}

/** The process's clock: Date.now, or Date.now plus the lab offset when KEYPORT_LAB_CLOCK is set. */
export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  const file = env[LAB_CLOCK_ENV];
  if (!file) return Date.now;
  readOffset(file); // a malformed file fails at start, not at the first call
  return () => Date.now() + readOffset(file);
}

let processClock: Clock | undefined;

/** Now, in milliseconds, on the clock this process's environment chose (decided at the first call). */
export function now(): number {
  processClock ??= clockFromEnv();
  return processClock();
}
