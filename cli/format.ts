// Durations in, durations out.
import { KeyportError } from '../proto/errors';
import { parseGoDurationSeconds } from '../proto/resources/duration';

/** A Go-style duration ("90s", "30m", "1h30m"), as in resources, → seconds; zero and garbage are refused. */
export function parseDurationSeconds(text: string, fieldPath: string): number {
  const seconds = parseGoDurationSeconds(text);
  if (seconds === undefined || seconds <= 0) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `${fieldPath}: "${text}" is not a duration such as 30m, 1h or 1h30m.`,
      {
        fieldPath,
      },
    );
  }
  return Math.ceil(seconds);
}

export function formatRemaining(ms: number): string {
  if (ms <= 0) return 'EXPIRED';
  const minutes = Math.floor(ms / 60_000);
  const hours = Math.floor(minutes / 60);
  return hours > 0 ? `valid for ${hours}h${minutes % 60}m` : `valid for ${minutes}m`;
}
