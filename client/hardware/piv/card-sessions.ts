// Long-lived PIV sessions for a process that signs many calls with a card key (Keyport Connect's backend):
// one PivSession per card, kept between calls, so a key with PIN policy "once" asks its PIN once per app
// session while the card stays in (the card keeps the PIN verified for its connection; "always" still asks at
// every signature). A session ends, and the next signature opens a new one that asks the PIN again:
//   - when its card leaves the reader (PivSession also forgets the PIN then, and a reinserted card is reset);
//   - after `idleMs` without a signature, on the service clock (proto/clock: the lab clock in tests);
//   - when a signature with it fails for any reason but a wrong PIN (the signer asks again for that);
//   - at closeAll (sign-out, app quit).
// Each signer still checks the card's serial; the sessions here are only the connections they share.
import { now as serviceNow } from '../../../proto/clock';
import type { Clock } from '../../../proto/clock';
import { PivError } from './errors';
import { openPivSession } from './session';
import type { PivSession } from './session';

/** How long a card session stays open without a signature (the PIN of a "once" key is asked again after). */
export const CARD_SESSION_IDLE_MS = 15 * 60_000;
/** How often idle sessions are looked for (the check at each use is exact; this one frees the card). */
const SWEEP_MS = 30_000;

export interface CardSessionsOptions {
  /** Opens a session (default: the first reader with a card, over PCSCLITE_CSOCK_NAME's pcscd). */
  open?: () => Promise<PivSession>;
  idleMs?: number;
  clock?: Clock;
}

interface Entry {
  opening: Promise<PivSession>;
  lastUsedMs: number;
  stopWatching?: () => void;
}

export class CardSessions {
  private readonly open: () => Promise<PivSession>;
  private readonly idleMs: number;
  private readonly clock: Clock;
  /** By the card's serial (the one the key was made on; `card` for a card without GET SERIAL). */
  private readonly entries = new Map<string, Entry>();
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: CardSessionsOptions = {}) {
    this.open = options.open ?? (() => openPivSession());
    this.idleMs = options.idleMs ?? CARD_SESSION_IDLE_MS;
    this.clock = options.clock ?? serviceNow;
  }

  /** The open session for the card `serial`, or a new one; an idle one is closed and replaced first. */
  async session(serial: number | undefined): Promise<PivSession> {
    if (this.closed) throw new PivError('SESSION_CLOSED', 'The app is quitting: the PIV card is closed.');
    const key = keyOf(serial);
    const existing = this.entries.get(key);
    if (existing && this.clock() - existing.lastUsedMs >= this.idleMs) await this.end(key, existing);
    let entry = this.entries.get(key);
    if (!entry) {
      const created: Entry = { opening: this.open(), lastUsedMs: this.clock() };
      entry = created;
      this.entries.set(key, created);
      created.opening.then(
        (session) => {
          // Pulled: the next signature opens a new session (and asks the PIN of a "once" key again).
          created.stopWatching = session.onCardEvent((event) => {
            if (event === 'removed') void this.end(key, created);
          });
        },
        () => {
          if (this.entries.get(key) === created) this.entries.delete(key);
        },
      );
      this.startSweeper();
    }
    entry.lastUsedMs = this.clock();
    return entry.opening;
  }

  /** A signature with `session` failed (not a wrong PIN): it is closed, and the next one starts afresh. */
  async failed(session: PivSession): Promise<void> {
    for (const [key, entry] of this.entries) {
      if ((await entry.opening.catch(() => undefined)) === session) await this.end(key, entry);
    }
  }

  /** Closes every session (sign-out, app quit); later signatures open new ones. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.entries].map(([key, entry]) => this.end(key, entry)));
  }

  /** closeAll, and no session is opened any more (app quit). */
  async dispose(): Promise<void> {
    this.closed = true;
    await this.closeAll();
  }

  /** How many sessions are open (tests). */
  get size(): number {
    return this.entries.size;
  }

  private async end(key: string, entry: Entry): Promise<void> {
    if (this.entries.get(key) === entry) this.entries.delete(key);
    if (this.entries.size === 0) this.stopSweeper();
    entry.stopWatching?.();
    const session = await entry.opening.catch(() => undefined);
    await session?.close();
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      for (const [key, entry] of this.entries) {
        if (this.clock() - entry.lastUsedMs >= this.idleMs) void this.end(key, entry);
      }
    }, SWEEP_MS);
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

function keyOf(serial: number | undefined): string {
  return serial === undefined ? 'card' : String(serial);
}
