// Durations in, durations out.
import { KeyportError } from '../proto/errors';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90s", "30m", "1h30m", "2d" → seconds. */
export function parseDurationSeconds(text: string, fieldPath: string): number {
  const parts = [...text.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `${fieldPath}: "${text}" is not a duration such as 30m, 1h or 1h30m.`,
      {
        fieldPath,
      },
    );
  }
  return parts.reduce(
    (total, [, amount, unit]) => total + Number(amount) * (UNIT_SECONDS[unit as string] ?? 0),
    0,
  );
}

export function formatRemaining(ms: number): string {
  if (ms <= 0) return 'EXPIRED';
  const minutes = Math.floor(ms / 60_000);
  const hours = Math.floor(minutes / 60);
  return hours > 0 ? `valid for ${hours}h${minutes % 60}m` : `valid for ${minutes}m`;
}
