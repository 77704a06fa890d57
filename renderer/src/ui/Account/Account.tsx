import { useId } from 'react';
import type { ProfileView, SessionKeyView } from '../../../../preload/contract';
import { needsRelogin } from '../../services/errors';
import { useAction, useNow } from '../../services/hooks';
import { useKeyport } from '../../services/KeyportContext';
import { formatDateTime, formatTimeLeft } from '../../services/time';
import { ErrorAlert } from '../components/ErrorAlert';
import { Progress } from '../components/Progress';
import { MfaDevices } from './MfaDevices';
import { ThisDevice } from './ThisDevice';

interface AccountProps {
  profile: ProfileView;
  onSignedOut(address: string): void;
  /** Opens the login of this profile's cluster (an expired session). */
  onSignInAgain(): void;
  /** Opened to enroll this device: its section takes the focus. */
  focusDevice?: boolean;
}

const COUNTDOWN_TICK_MS = 1000;

function list(values: string[]): string {
  return values.length > 0 ? values.join(', ') : 'None';
}

/** Where the session key lives, in words; for a PIV card, its slot. */
function sessionKeyText(key: SessionKeyView): string {
  switch (key.kind) {
    case 'keychain':
      return 'In the OS keychain';
    case 'file':
      return 'In a file only you can read (the headless opt-in)';
    case 'piv':
      return `On your YubiKey, PIV slot ${key.slot}${key.serial !== undefined ? ` (serial ${key.serial})` : ''}`;
  }
}

export function Account({ profile, onSignedOut, onSignInAgain, focusDevice = false }: AccountProps) {
  const api = useKeyport();
  const logout = useAction();
  const now = useNow(COUNTDOWN_TICK_MS);
  const headingId = useId();
  const expired = profile.expiresMs <= now;

  async function signOut() {
    const result = await logout.run(() => api.auth.logout({ address: profile.address }));
    if (result?.ok) onSignedOut(profile.address);
  }

  const signInAgain = (
    <button type="button" className="button button-primary" onClick={onSignInAgain}>
      Sign in again
    </button>
  );

  return (
    <section className="screen" aria-labelledby={headingId}>
      <h2 id={headingId}>Account</h2>
      <div className="panel">
        <dl className="facts">
          <dt>User</dt>
          <dd>{profile.user}</dd>
          <dt>Roles</dt>
          <dd>{list(profile.roles)}</dd>
          <dt>Logins</dt>
          <dd>{list(profile.logins)}</dd>
          <dt>Cluster</dt>
          <dd>
            {profile.cluster} <span className="muted">({profile.address})</span>
          </dd>
          <dt>Valid until</dt>
          <dd>
            <time dateTime={new Date(profile.expiresMs).toISOString()}>
              {formatDateTime(profile.expiresMs)}
            </time>{' '}
            <span className={expired ? 'countdown expired' : 'countdown'}>
              ({formatTimeLeft(profile.expiresMs, now)})
            </span>
          </dd>
          <dt>Session key</dt>
          <dd>{sessionKeyText(profile.sessionKey)}</dd>
          {profile.sessionKey.kind === 'piv' && (
            <>
              <dt>Key policy</dt>
              <dd>
                <code>{profile.sessionKey.policy}</code>{' '}
                <span className="muted">
                  (touch {profile.sessionKey.touchPolicy}, PIN {profile.sessionKey.pinPolicy})
                </span>
              </dd>
            </>
          )}
        </dl>
        {expired && (
          <div className="notice">
            <p>Your certificates have expired. Sign in again to keep working.</p>
            {signInAgain}
          </div>
        )}
        <ErrorAlert error={logout.error} held={logout.heldError} />
        <div className="form-actions">
          <button type="button" className="button" disabled={logout.busy} onClick={() => void signOut()}>
            Sign out
          </button>
          <Progress active={logout.busy} label="Signing out…" />
        </div>
      </div>
      <ThisDevice
        // A new session (signed in again) may carry this device: its status is asked for again.
        key={`${profile.address} ${profile.user} ${profile.validAfterMs}`}
        cluster={profile.address}
        focusOnOpen={focusDevice}
        onSignInAgain={onSignInAgain}
        relogin={(error) => (needsRelogin(error) ? signInAgain : null)}
      />
      <MfaDevices
        key={profile.address + profile.user}
        relogin={(error) => (needsRelogin(error) ? signInAgain : null)}
      />
    </section>
  );
}
