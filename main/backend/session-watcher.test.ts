import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLabClock } from '../../lab/clock';
import type { LabClock } from '../../lab/clock';
import { sessionNoticeSchema } from '../../preload/contract';
import type { SessionNotice } from '../../preload/contract';
import { SessionWatcher } from './session-watcher';

const MINUTE = 60_000;

describe('SessionWatcher', () => {
  let clock: LabClock | undefined;
  let watcher: SessionWatcher | undefined;
  afterEach(() => {
    watcher?.close();
    clock?.dispose();
  });

  /** A watcher on a lab clock, ticked by the test (no timer), and a session ending in an hour. */
  function start(warnBeforeMs?: number) {
    clock = createLabClock();
    const notices: SessionNotice[] = [];
    watcher = new SessionWatcher({
      clock: clock.now,
      notify: (notice) => notices.push(sessionNoticeSchema.parse(notice)),
      tickMs: 0,
      ...(warnBeforeMs === undefined ? {} : { warnBeforeMs }),
    });
    const session = {
      address: 'cluster.example:3025',
      user: 'alice',
      validAfterMs: clock.now() - MINUTE,
      expiresMs: clock.now() + 60 * MINUTE,
    };
    return { clock, watcher, notices, session };
  }

  it('says "ends soon" 10 minutes before the expiry and "ended" at it, once each however often it ticks', () => {
    const { clock, watcher, notices, session } = start();
    watcher.track(session);
    clock.advance(49 * MINUTE);
    watcher.check();
    expect(notices).toEqual([]);
    clock.advance(MINUTE + 1);
    watcher.check();
    watcher.check();
    expect(notices).toEqual([
      {
        kind: 'endsSoon',
        address: session.address,
        user: 'alice',
        expiresMs: session.expiresMs,
        nowMs: expect.any(Number),
      },
    ]);
    clock.advance(9 * MINUTE);
    watcher.check();
    expect(notices).toHaveLength(1);
    clock.advance(MINUTE);
    for (let i = 0; i < 3; i++) watcher.check();
    clock.advance(60 * MINUTE);
    watcher.check();
    expect(notices.map((n) => n.kind)).toEqual(['endsSoon', 'ended']);
    // Tracking the same session again (the profile watcher reports it again) says nothing new.
    watcher.track(session);
    expect(notices).toHaveLength(2);
  });

  it('takes the warning time it is given', () => {
    const { clock, watcher, notices, session } = start(2 * MINUTE);
    watcher.track(session);
    clock.advance(57 * MINUTE);
    watcher.check();
    expect(notices).toEqual([]);
    clock.advance(MINUTE + 1);
    watcher.check();
    expect(notices.map((n) => n.kind)).toEqual(['endsSoon']);
    expect(() => new SessionWatcher({ clock: Date.now, notify: () => {}, warnBeforeMs: -1 })).toThrow(
      RangeError,
    );
  });

  it('after a sleep across the expiry, the first tick says "ended" only', () => {
    const { clock, watcher, notices, session } = start();
    watcher.track(session);
    watcher.check();
    // The laptop sleeps for two hours: no tick runs, and the clock jumps past the expiry.
    clock.advance(120 * MINUTE);
    watcher.check();
    watcher.check();
    expect(notices).toEqual([
      {
        kind: 'ended',
        address: session.address,
        user: 'alice',
        expiresMs: session.expiresMs,
        nowMs: expect.any(Number),
      },
    ]);
    // The time it was said, on the service clock: after the jump, past the expiry.
    expect(notices[0]!.nowMs).toBeGreaterThanOrEqual(session.expiresMs);
  });

  it('a sleep into the last minutes says "ends soon", then "ended" at the expiry', () => {
    const { clock, watcher, notices, session } = start();
    watcher.track(session);
    clock.advance(55 * MINUTE);
    watcher.check();
    clock.advance(5 * MINUTE);
    watcher.check();
    expect(notices.map((n) => n.kind)).toEqual(['endsSoon', 'ended']);
  });

  it("a relogin's new certificates are a new session with notices of their own; a signed-out one says nothing", () => {
    const { clock, watcher, notices, session } = start();
    watcher.track(session);
    clock.advance(55 * MINUTE);
    watcher.check();
    const renewed = { ...session, validAfterMs: clock.now(), expiresMs: clock.now() + 60 * MINUTE };
    watcher.track(renewed);
    clock.advance(10 * MINUTE);
    watcher.check();
    // The old session's expiry passed: nothing is said of it, it was replaced.
    expect(notices.map((n) => [n.kind, n.expiresMs])).toEqual([['endsSoon', session.expiresMs]]);
    clock.advance(45 * MINUTE);
    watcher.check();
    expect(notices.map((n) => [n.kind, n.expiresMs])).toEqual([
      ['endsSoon', session.expiresMs],
      ['endsSoon', renewed.expiresMs],
    ]);
    watcher.forget(session.address);
    clock.advance(60 * MINUTE);
    watcher.check();
    expect(notices).toHaveLength(2);
  });

  it('gives the latest notice of each watched session to a window that opens later; none once signed out', () => {
    const { clock, watcher, session } = start();
    watcher.track(session);
    expect(watcher.notices()).toEqual([]);
    clock.advance(55 * MINUTE);
    watcher.check();
    expect(watcher.notices()).toEqual([
      expect.objectContaining({ kind: 'endsSoon', expiresMs: session.expiresMs, nowMs: expect.any(Number) }),
    ]);
    clock.advance(10 * MINUTE);
    watcher.check();
    const [ended] = watcher.notices();
    expect(ended).toMatchObject({ kind: 'ended', address: session.address, user: 'alice' });
    expect(ended!.nowMs).toBeGreaterThanOrEqual(session.expiresMs);
    // A renewed session has said nothing yet; a signed-out one is gone.
    watcher.track({ ...session, validAfterMs: clock.now(), expiresMs: clock.now() + 60 * MINUTE });
    expect(watcher.notices()).toEqual([]);
    watcher.check();
    watcher.forget(session.address);
    expect(watcher.notices()).toEqual([]);
  });

  it('ticks on its own timer, reading the clock at each tick', async () => {
    clock = createLabClock();
    const notices: SessionNotice[] = [];
    watcher = new SessionWatcher({ clock: clock.now, notify: (n) => notices.push(n), tickMs: 20 });
    watcher.track({
      address: 'cluster.example:3025',
      user: 'alice',
      validAfterMs: clock.now(),
      expiresMs: clock.now() + 60 * MINUTE,
    });
    expect(notices).toEqual([]);
    clock.advance(61 * MINUTE);
    await vi.waitFor(() => expect(notices.map((n) => n.kind)).toEqual(['ended']), {
      timeout: 10_000,
      interval: 20,
    });
  });
});
