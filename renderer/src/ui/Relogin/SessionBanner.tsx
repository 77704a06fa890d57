// The session banner (issue 13): "Session ends in 9 min — Sign in again" in the session's last minutes,
// counting down by the minute, and "Your session ended at 14:02 — Sign in again" after it. "Sign in again"
// opens the relogin prompt at once (auth.signInAgain), over whatever is on screen; the renewed session takes
// the banner away. A relogin the person cancels leaves the banner as it was.
import { useState } from 'react';
import type { ContractError, ProfileView } from '../../../../preload/contract';
import { call } from '../../services/keyport';
import { useKeyport } from '../../services/KeyportContext';
import { useSessionBanner } from '../../services/sessionBanner';
import type { SessionBannerState } from '../../services/sessionBanner';
import { formatClock } from '../../services/time';
import { ErrorAlert } from '../components/ErrorAlert';

export function bannerText(banner: SessionBannerState): string {
  if (banner.kind === 'ended') return `Your session ended at ${formatClock(banner.expiresMs)}`;
  return banner.minutesLeft < 1
    ? 'Session ends in less than a minute'
    : `Session ends in ${banner.minutesLeft} min`;
}

export function SessionBanner({ profile }: { profile: ProfileView | null }) {
  const api = useKeyport();
  const banner = useSessionBanner(api, profile);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ContractError | null>(null);
  if (!banner) return null;

  async function signInAgain(address: string) {
    if (busy) return;
    setBusy(true);
    setError(null);
    const result = await call(() => api.auth.signInAgain({ address }));
    setBusy(false);
    // Cancelled: the person chose not to now; the banner stays and says so well enough.
    if (!result.ok && result.error.code !== 'CANCELLED') setError(result.error);
  }

  return (
    <section
      className={`session-banner${banner.kind === 'ended' ? ' session-banner-ended' : ''}`}
      aria-label="Session"
    >
      <p className="session-banner-line">
        <span role="status">{bannerText(banner)}</span>
        <span aria-hidden="true"> — </span>
        <button
          type="button"
          className="button button-small"
          disabled={busy}
          onClick={() => void signInAgain(banner.address)}
        >
          Sign in again
        </button>
      </p>
      <ErrorAlert error={error} />
    </section>
  );
}
