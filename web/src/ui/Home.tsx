// Home: who is signed in, their roles and logins, until when, their MFA devices, and this browser
// session's device state (untrusted until a trusted device approves it).
import { useEffect, useRef, useState } from 'react';
import type { WebSessionView } from '../../../proto/webapi';
import { api, ApiError } from '../api';
import { VerifyBrowser } from './VerifyBrowser';

const when = (ms: number) =>
  new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function Home(props: { view: WebSessionView; onSignedOut: (notice?: string) => void }) {
  const { view } = props;
  const [error, setError] = useState<string | undefined>();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);

  async function signOut() {
    setError(undefined);
    try {
      await api.signOut(view.csrfToken);
      props.onSignedOut('You are signed out.');
    } catch (e) {
      if (e instanceof ApiError && e.detail.code === 'UNAUTHENTICATED') props.onSignedOut(e.message);
      else setError(e instanceof Error ? e.message : String(e));
    }
  }

  return (
    <main className="page">
      <header className="topbar">
        <h1 id="home-heading" tabIndex={-1} ref={heading}>
          Signed in as {view.user}
        </h1>
        <button type="button" className="secondary" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <section className="card" aria-labelledby="session-heading">
        <h2 id="session-heading">This session</h2>
        <dl>
          <dt>Roles</dt>
          <dd>{view.roles.length > 0 ? view.roles.join(', ') : 'none'}</dd>
          <dt>Logins</dt>
          <dd>{view.logins.length > 0 ? view.logins.join(', ') : 'none'}</dd>
          <dt>Signed in with</dt>
          <dd>{view.loginMethod}</dd>
          <dt>Valid until</dt>
          <dd>
            <time dateTime={new Date(view.expiresMs).toISOString()}>{when(view.expiresMs)}</time>
          </dd>
          <dt>Device</dt>
          <dd data-testid="device-state">
            {view.device.trusted ? (
              <span className="badge trusted">
                Trusted device {view.device.assetTag || view.device.deviceId}
              </span>
            ) : (
              <span className="badge untrusted">
                Untrusted: this browser is not verified by a trusted device
              </span>
            )}
          </dd>
        </dl>
      </section>
      {!view.device.trusted && view.deviceTrust !== 'off' && <VerifyBrowser view={view} />}
      <section className="card" aria-labelledby="devices-heading">
        <h2 id="devices-heading">Your MFA devices</h2>
        {view.mfaDevices.length === 0 ? (
          <p>You have no MFA devices.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Added</th>
                <th scope="col">Last used</th>
              </tr>
            </thead>
            <tbody>
              {view.mfaDevices.map((device) => (
                <tr key={device.name}>
                  <td>{device.name}</td>
                  <td>
                    {device.type === 'webauthn' ? (device.passkey ? 'Passkey' : 'Security key') : 'OTP app'}
                  </td>
                  <td>{when(device.addedMs)}</td>
                  <td>{device.lastUsedMs ? when(device.lastUsedMs) : 'never'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </main>
  );
}
