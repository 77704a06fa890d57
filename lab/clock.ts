// A clock a test controls: a file named by KEYPORT_LAB_CLOCK (proto/clock.ts) that keyport-auth and the
// keyport CLI read at every reading of their clock. advance() moves their time forward at once, so a
// test of expiry never sleeps and never races the wall clock.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAB_CLOCK_ENV } from '../proto/clock';

export interface LabClock {
  /** The environment that puts a process on this clock: pass it to the cluster and to the CLI. */
  env: Record<string, string>;
  /** How far this clock is ahead of the wall clock, in milliseconds. */
  offsetMs(): number;
  /** Moves the clock forward; every process on it sees the new time at its next reading. */
  advance(ms: number): void;
  /** Now on this clock. */
  now(): number;
  dispose(): void;
}

export function createLabClock(): LabClock {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-clock-'));
  const file = join(dir, 'offset-ms');
  let offset = 0;
  const write = () => {
    // Written whole and renamed into place, so a reader never sees a half-written number.
    const temporary = `${file}.tmp`;
    writeFileSync(temporary, String(offset));
    renameSync(temporary, file);
  };
  write();
  return {
    env: { [LAB_CLOCK_ENV]: file },
    offsetMs: () => offset,
    advance(ms: number) {
      if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError('A lab clock only moves forward.');
      offset += ms;
      write();
    },
    now: () => Date.now() + offset,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
