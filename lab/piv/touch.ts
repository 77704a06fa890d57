// The person's finger on the virtual card, like the lab security key's: "auto" touches at once, "manual"
// waits until the control socket says touch (or deny, or the YubiKey's 15 s pass), "denied" never
// touches. The mode can change while the card runs. Every request is announced, so tests count touches.
import type { TouchOutcome, TouchSource } from './context';

export type TouchMode = 'auto' | 'manual' | 'denied';
export type TouchDecision = 'approve' | 'deny';

export type TouchEvent = { event: 'touch-needed' } | { event: 'touch'; outcome: TouchOutcome };

/** A YubiKey gives up waiting for a touch after about 15 seconds. */
export const DEFAULT_TOUCH_TIMEOUT_MS = 15_000;

export function parseTouchMode(text: string): TouchMode {
  if (text === 'auto' || text === 'manual' || text === 'denied') return text;
  throw new Error(`touch mode must be auto, manual or denied, not "${text}"`);
}

export class TouchController implements TouchSource {
  private waiting: ((outcome: TouchOutcome) => void) | undefined;

  constructor(
    public mode: TouchMode,
    private readonly emit: (event: TouchEvent) => void,
    private readonly timeoutMs = DEFAULT_TOUCH_TIMEOUT_MS,
  ) {}

  get isWaiting(): boolean {
    return this.waiting !== undefined;
  }

  request(): Promise<TouchOutcome> {
    this.waiting?.('cancelled');
    return new Promise((resolve) => {
      const finish = (outcome: TouchOutcome): void => {
        if (this.waiting !== finish) return;
        this.waiting = undefined;
        clearTimeout(timer);
        this.emit({ event: 'touch', outcome });
        resolve(outcome);
      };
      this.waiting = finish;
      const timer = setTimeout(() => finish('timeout'), this.timeoutMs);
      this.emit({ event: 'touch-needed' });
      if (this.mode === 'auto') finish('approved');
      else if (this.mode === 'denied') finish('denied');
    });
  }

  /** Answers the touch request that is waiting; false when none is. */
  answer(decision: TouchDecision): boolean {
    if (!this.waiting) return false;
    this.waiting(decision === 'approve' ? 'approved' : 'denied');
    return true;
  }

  /** The card left the reader: a waiting request ends unanswered. */
  cancel(): void {
    this.waiting?.('cancelled');
  }
}
