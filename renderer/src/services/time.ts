// Times as the person reads them: local time, 24 h clock for short times.

const pad = (value: number) => String(value).padStart(2, '0');

/** "14:05": a local time of day on a 24 h clock, independent of the locale's 12/24 h preference. */
export function formatClock(ms: number): string {
  const date = new Date(ms);
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A local date and time in the person's locale ("12 Mar 2030, 14:05"). */
export function formatDateTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** A local date in the person's locale. */
export function formatDate(ms: number): string {
  return new Date(ms).toLocaleDateString(undefined, { dateStyle: 'medium' });
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "11 h 59 min left", counted down to the minute (partial minutes round down). */
export function formatTimeLeft(untilMs: number, nowMs: number): string {
  const left = untilMs - nowMs;
  if (left <= 0) return 'Expired';
  if (left < MINUTE) return 'Less than a minute left';
  const days = Math.floor(left / DAY);
  const hours = Math.floor((left % DAY) / HOUR);
  const minutes = Math.floor((left % HOUR) / MINUTE);
  if (days > 0) return `${days} d ${hours} h left`;
  if (hours > 0) return `${hours} h ${minutes} min left`;
  return `${minutes} min left`;
}
