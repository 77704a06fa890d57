// What the session banner shows, from the backend's session notices (onSessionNotice: "ends soon", "ended")
// and the signed-in profile's expiry. The minutes are counted on the service clock: each notice says the
// service's time when it was said, and the renderer keeps the difference to its own clock (none on a real
// machine; the lab clock's offset in tests). A notice about another session (one renewed since, another
// cluster) shows nothing, so a relogin's new session takes the banner away. A window that opens after a
// notice (a reload, a window reopened from a desktop notification) asks for the notices said so far.
import { useEffect, useState } from 'react';
import type { KeyportApi, ProfileView, SessionNotice } from '../../../preload/contract';
import { call } from './keyport';

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
  // The latest notice per cluster address.
  const [notices, setNotices] = useState<ReadonlyMap<string, HeardNotice>>(new Map());
  const [nowMs, setNowMs] = useState(() => Date.now());

  useEffect(() => {
    let live = true;
    const hear = (notice: SessionNotice, replace: boolean) => {
      const arrived = Date.now();
      const heard = { notice, skewMs: notice.nowMs === undefined ? 0 : notice.nowMs - arrived };
      setNotices((map) => {
        // An event heard meanwhile is newer than the startup answer.
        if (!replace && map.has(notice.address)) return map;
        return new Map(map).set(notice.address, heard);
      });
      setNowMs(notice.nowMs ?? arrived);
    };
    const off = api.onSessionNotice((notice) => hear(notice, true));
    void call(() => api.auth.sessionNotices()).then((result) => {
      if (live && result.ok) for (const notice of result.value) hear(notice, false);
    });
    return () => {
      live = false;
      off();
    };
  }, [api]);

  const heard = profile ? notices.get(profile.address) : undefined;
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
