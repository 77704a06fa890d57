import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clockFromEnv, LAB_CLOCK_ENV, LabClockError, parseClockOffset } from './clock';

describe('parseClockOffset', () => {
  it('reads whole milliseconds, blank as zero', () => {
    expect(parseClockOffset('0')).toBe(0);
    expect(parseClockOffset(' 3600000\n')).toBe(3_600_000);
    expect(parseClockOffset('')).toBe(0);
  });

  it.each(['-1', '1.5', '1e6', 'soon', '0x10', '9'.repeat(16), '12 34'])('refuses "%s"', (text) => {
    expect(() => parseClockOffset(text)).toThrow(LabClockError);
  });
});

describe('clockFromEnv', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('is the wall clock without KEYPORT_LAB_CLOCK', () => {
    expect(clockFromEnv({})).toBe(Date.now);
  });

  it('adds the offset from the file, read again at every reading', () => {
    dir = mkdtempSync(join(tmpdir(), 'clock-test-'));
    const file = join(dir, 'offset');
    const clock = clockFromEnv({ [LAB_CLOCK_ENV]: file });
    // A missing file is no offset.
    expect(Math.abs(clock() - Date.now())).toBeLessThan(60_000);
    writeFileSync(file, String(10 * 3_600_000));
    const ahead = clock() - Date.now();
    expect(ahead).toBeGreaterThanOrEqual(10 * 3_600_000 - 60_000);
    expect(ahead).toBeLessThanOrEqual(10 * 3_600_000);
  });

  it('refuses a malformed file when the clock is made and when it is read', () => {
    dir = mkdtempSync(join(tmpdir(), 'clock-test-'));
    const file = join(dir, 'offset');
    writeFileSync(file, '-5000');
    expect(() => clockFromEnv({ [LAB_CLOCK_ENV]: file })).toThrow(LabClockError);
    writeFileSync(file, '0');
    const clock = clockFromEnv({ [LAB_CLOCK_ENV]: file });
    writeFileSync(file, 'yesterday');
    expect(() => clock()).toThrow(LabClockError);
  });
});
