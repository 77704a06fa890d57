// What the session banner shows, from the backend's session notices (onSessionNotice: "ends soon", "ended")
// and the signed-in profile's expiry. The minutes are counted on the service clock: each notice says the
// service's time when it was said, and the renderer keeps the difference to its own clock (none on a real
// machine; the lab clock's offset in tests). A notice about another session (one renewed since, another
// cluster) shows nothing, so a relogin's new session takes the banner away.
import { useEffect, useState } from 'react';
import type { KeyportApi, ProfileView, SessionNotice } from '../../../preload/contract';

const MINUTE = 60_000;

export type SessionBannerState =
  | { kind: 'endsSoon'; address: string; minutesLeft: number }
  | { kind: 'ended'; address: string; expiresMs: number };

interface HeardNotice {
  notice: SessionNotice;
  /** The service clock minus the renderer's, when the notice arrived. */
  skewMs: number;
}

/** The banner for `profile` at `nowMs` (service clock), or null when there is nothing to say. */
export function sessionBanner(
  heard: SessionNotice | null,
  profile: ProfileView | null,
  nowMs: number,
): SessionBannerState | null {
  if (!heard || !profile) return null;
  if (heard.address !== profile.address || heard.expiresMs !== profile.expiresMs) return null;
  const { address, expiresMs } = profile;
  if (heard.kind === 'ended' || nowMs >= expiresMs) return { kind: 'ended', address, expiresMs };
  return { kind: 'endsSoon', address, minutesLeft: Math.floor((expiresMs - nowMs) / MINUTE) };
}

/** How long until the banner's text changes: the next whole minute left, or the expiry. */
export function untilNextChange(expiresMs: number, nowMs: number): number {
  const left = expiresMs - nowMs;
  if (left <= 0) return 0;
  return (left % MINUTE || MINUTE) + 1;
}

/** The banner for the signed-in profile, counting down by the minute. */
export function useSessionBanner(api: KeyportApi, profile: ProfileView | null): SessionBannerState | null {
  const [heard, setHeard] = useState<HeardNotice | null>(null);
  const [nowMs, setNowMs] = useState(() => Date.now());

  useEffect(
    () =>
      api.onSessionNotice((notice) => {
        const arrived = Date.now();
        setHeard({ notice, skewMs: notice.nowMs === undefined ? 0 : notice.nowMs - arrived });
        setNowMs(notice.nowMs ?? arrived);
      }),
    [api],
  );

  const skewMs = heard?.skewMs ?? 0;
  const banner = sessionBanner(heard?.notice ?? null, profile, nowMs);
  const expiresMs = banner?.kind === 'endsSoon' ? profile?.expiresMs : undefined;
  useEffect(() => {
    if (expiresMs === undefined) return;
    const timer = setTimeout(
      () => setNowMs(Date.now() + skewMs),
      untilNextChange(expiresMs, Date.now() + skewMs),
    );
    return () => clearTimeout(timer);
  }, [expiresMs, skewMs, nowMs]);

  return banner;
}
