import { describe, expect, it } from 'vitest';
import { formatClock, formatTimeLeft } from './time';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('formatClock', () => {
  it('prints local time on a 24 h clock with leading zeros', () => {
    expect(formatClock(new Date(2030, 0, 1, 0, 3).getTime())).toBe('00:03');
    expect(formatClock(new Date(2030, 0, 1, 23, 59).getTime())).toBe('23:59');
  });
});

describe('formatTimeLeft', () => {
  const now = 1_000_000_000;
  it('counts hours and minutes, rounding partial minutes down', () => {
    expect(formatTimeLeft(now + 12 * HOUR - 30_000, now)).toBe('11 h 59 min left');
    expect(formatTimeLeft(now + 5 * MINUTE + 59_000, now)).toBe('5 min left');
  });
  it('counts days for long sessions', () => {
    expect(formatTimeLeft(now + 50 * HOUR, now)).toBe('2 d 2 h left');
  });
  it('says when less than a minute is left, and when it has expired', () => {
    expect(formatTimeLeft(now + 59_000, now)).toBe('Less than a minute left');
    expect(formatTimeLeft(now, now)).toBe('Expired');
  });
});
