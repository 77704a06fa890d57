// Watches every signed-in profile's session and says when it ends: a "session ends soon" notice a while
// before the certificates expire (10 minutes by default), and a "session ended" notice at expiry. At most
// one notice per session and kind: a session is its address and its certificates' validity, so a relogin
// (new certificates) is a new session with notices of its own.
//
// Sleep and wake: a laptop that sleeps across the expiry pauses every timer. The watcher therefore never
// waits for a timer set to the expiry; it ticks often and, at each tick, reads the service clock
// (proto/clock: the wall clock, or the lab's) and compares. After a wake past the expiry the first tick
// says "ended" only: an "ends soon" about a session already over would be a false line.
import type { Clock } from '../../proto/clock';
import type { SessionNotice } from '../../preload/contract';

export const DEFAULT_WARN_BEFORE_MS = 10 * 60_000;
/** How often the clock is read: a notice comes at most this late (and at once after a wake). */
export const DEFAULT_TICK_MS = 15_000;

export interface WatchedSession {
  address: string;
  user: string;
  validAfterMs: number;
  expiresMs: number;
}

export interface SessionWatcherOptions {
  clock: Clock;
  notify(notice: SessionNotice): void;
  /** How long before the expiry "ends soon" is said (default 10 minutes). */
  warnBeforeMs?: number;
  /** How often the clock is read (default 15 s); 0 for no timer (the caller calls check()). */
  tickMs?: number;
}

export class SessionWatcher {
  private readonly sessions = new Map<string, WatchedSession>();
  /** `${session key}|${kind}` of every notice said, for the sessions still watched. */
  private readonly said = new Set<string>();
  private readonly warnBeforeMs: number;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SessionWatcherOptions) {
    this.warnBeforeMs = options.warnBeforeMs ?? DEFAULT_WARN_BEFORE_MS;
    if (!Number.isSafeInteger(this.warnBeforeMs) || this.warnBeforeMs < 0) {
      throw new RangeError('warnBeforeMs is whole milliseconds ≥ 0.');
    }
    const tickMs = options.tickMs ?? DEFAULT_TICK_MS;
    if (tickMs > 0) {
      this.timer = setInterval(() => this.check(), tickMs);
      // The watcher never keeps a process alive on its own.
      this.timer.unref();
    }
  }

  /** Watches `session` in place of what `address` had (a relogin's new certificates start afresh). */
  track(session: WatchedSession): void {
    const old = this.sessions.get(session.address);
    if (old && sessionKey(old) !== sessionKey(session)) this.forgetNotices(old);
    this.sessions.set(session.address, { ...session });
    this.check();
  }

  /** Signed out of `address`: nothing more is said of it. */
  forget(address: string): void {
    const old = this.sessions.get(address);
    if (old) this.forgetNotices(old);
    this.sessions.delete(address);
  }

  /** Reads the clock once and says what is due; each notice once per session and kind. */
  check(): void {
    const now = this.options.clock();
    for (const session of this.sessions.values()) {
      if (now >= session.expiresMs) this.say(session, 'ended', now);
      else if (now >= session.expiresMs - this.warnBeforeMs) this.say(session, 'endsSoon', now);
    }
  }

  /**
   * The latest notice said of each session still watched ("ended" over "ends soon"), as of now: what a
   * window that opens after it was said (a reload, a window reopened from a notification) shows.
   */
  notices(): SessionNotice[] {
    const nowMs = this.options.clock();
    const notices: SessionNotice[] = [];
    for (const session of this.sessions.values()) {
      const key = sessionKey(session);
      const kind = this.said.has(`${key}|ended`)
        ? 'ended'
        : this.said.has(`${key}|endsSoon`)
          ? 'endsSoon'
          : null;
      if (kind) {
        notices.push({
          kind,
          address: session.address,
          user: session.user,
          expiresMs: session.expiresMs,
          nowMs,
        });
      }
    }
    return notices;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.sessions.clear();
    this.said.clear();
  }

  private say(session: WatchedSession, kind: SessionNotice['kind'], nowMs: number): void {
    const key = `${sessionKey(session)}|${kind}`;
    if (this.said.has(key)) return;
    this.said.add(key);
    this.options.notify({
      kind,
      address: session.address,
      user: session.user,
      expiresMs: session.expiresMs,
      nowMs,
    });
  }

  private forgetNotices(session: WatchedSession): void {
    const prefix = `${sessionKey(session)}|`;
    for (const key of this.said) if (key.startsWith(prefix)) this.said.delete(key);
  }
}

function sessionKey(session: WatchedSession): string {
  return `${session.address}|${session.validAfterMs}|${session.expiresMs}`;
}
