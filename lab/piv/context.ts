// What every command handler of the card sees: the persistent state, the volatile security status of the
// current PIV selection, the clock and the person's finger. No sockets, no files: save() is handed in.
import type { PivCardState } from './state';

export type TouchOutcome = 'approved' | 'denied' | 'timeout' | 'cancelled';

/** The person touching the card's contact; the card waits on it for keys with a touch policy. */
export interface TouchSource {
  request(): Promise<TouchOutcome>;
}

/** Security status of one PIV selection (SP 800-73-4 Part 2 §3.1.1: a new SELECT resets it). */
export interface Session {
  pinVerified: boolean;
  /** A VERIFY since the last use of a PIN-policy-"always" key (YubiKey: consumed by that use). */
  pinFresh: boolean;
  managementAuthenticated: boolean;
  /** The card's half of a GENERAL AUTHENTICATE on 9B in progress: good for the next command only. */
  managementExchange: { kind: 'witness' | 'challenge'; algorithm: number; expected: Uint8Array } | undefined;
}

export interface CardContext {
  state: PivCardState;
  session: Session;
  now(): number;
  touch: TouchSource;
  /** When the card was last touched (for touch-cached keys); forgotten at power-off. */
  touchCache: { lastTouchAt: number | undefined };
  /** Persists `state` (PIN counters, keys, objects). */
  save(): void;
}

export function newSession(): Session {
  return {
    pinVerified: false,
    pinFresh: false,
    managementAuthenticated: false,
    managementExchange: undefined,
  };
}
