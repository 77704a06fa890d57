// Sign in: a password and then a second factor (a security key or an OTP code, as the cluster allows), or
// passwordless with a passkey, or through an SSO connector ("Sign in with DISPLAY": the browser goes to the
// identity provider and comes back signed in, auth/sso/web-sign-in.ts). The password leaves with the call
// that checks it and is not kept.
import { useEffect, useRef, useState } from 'react';
import type { FormEvent } from 'react';
import type { WebChallenge, WebClusterInfo, WebConnector } from '../../../proto/webapi';
import { api, ApiError } from '../api';
import { getAssertion } from '../webauthn';

type Step = { kind: 'password' } | { kind: 'secondFactor'; challenge: WebChallenge };

function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof DOMException && error.name === 'NotAllowedError') {
    return 'The security key was not used (cancelled or timed out). Try again.';
  }
  return error instanceof Error ? error.message : String(error);
}

export function SignIn(props: { notice?: string | undefined; onSignedIn: () => void }) {
  const [cluster, setCluster] = useState<WebClusterInfo | undefined>();
  const [step, setStep] = useState<Step>({ kind: 'password' });
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>(props.notice);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    api.cluster().then(setCluster, (e: unknown) => setError(messageOf(e)));
  }, []);
  useEffect(() => heading.current?.focus(), [step.kind]);

  async function run(label: string, work: () => Promise<void>) {
    setBusy(label);
    setError(undefined);
    try {
      await work();
    } catch (e) {
      setError(messageOf(e));
      // A spent or expired challenge cannot be answered again: back to the password.
      if (e instanceof ApiError && e.detail.code !== 'INVALID_ARGUMENT') setStep({ kind: 'password' });
    } finally {
      setBusy(undefined);
    }
  }

  const submitPassword = (event: FormEvent) => {
    event.preventDefault();
    void run('Checking your password…', async () => {
      const challenge = await api.challenge({ user, password });
      setPassword('');
      if (!challenge.mfaRequired && !challenge.webauthn && !challenge.totpAllowed) {
        await api.login({ challengeId: challenge.challengeId });
        props.onSignedIn();
        return;
      }
      setStep({ kind: 'secondFactor', challenge });
    });
  };

  const useKey = (challenge: WebChallenge) =>
    run('Tap your security key…', async () => {
      const webauthn = await getAssertion(challenge.webauthn ?? {});
      await api.login({ challengeId: challenge.challengeId, webauthn });
      props.onSignedIn();
    });

  const submitCode = (event: FormEvent, challenge: WebChallenge) => {
    event.preventDefault();
    void run('Checking the code…', async () => {
      await api.login({ challengeId: challenge.challengeId, totpCode: code.trim() });
      setCode('');
      props.onSignedIn();
    });
  };

  const passwordless = () =>
    run('Use your passkey: tap your security key and give its PIN…', async () => {
      const challenge = await api.challenge({ passwordless: true });
      const webauthn = await getAssertion(challenge.webauthn ?? {});
      await api.login({ challengeId: challenge.challengeId, webauthn });
      props.onSignedIn();
    });

  const singleSignOn = (connector: WebConnector) =>
    run(`Opening ${connector.display}…`, async () => {
      const started = await api.ssoStart({ connector: connector.name });
      window.location.assign(started.authorizationUrl);
    });

  return (
    <main className="page">
      <section className="card" aria-labelledby="sign-in-heading">
        <h1 id="sign-in-heading" tabIndex={-1} ref={heading}>
          Sign in to {cluster?.clusterName ?? 'Keyport'}
        </h1>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {busy && (
          <p className="status" role="status">
            {busy}
          </p>
        )}
        {step.kind === 'password' ? (
          <>
            <form onSubmit={submitPassword}>
              <label htmlFor="user">User name</label>
              <input
                id="user"
                name="username"
                autoComplete="username"
                value={user}
                onChange={(e) => setUser(e.target.value)}
                required
              />
              <label htmlFor="password">Password</label>
              <input
                id="password"
                type="password"
                autoComplete="current-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                required
              />
              <button type="submit" disabled={busy !== undefined}>
                Sign in
              </button>
            </form>
            {cluster?.passwordless && (
              <div className="alternative">
                <p>Or, without a password:</p>
                <button
                  type="button"
                  className="secondary"
                  onClick={() => void passwordless()}
                  disabled={busy !== undefined}
                >
                  Sign in with a passkey
                </button>
              </div>
            )}
            {cluster && cluster.connectors.length > 0 && (
              <div className="alternative">
                <p>Or with your organisation's account:</p>
                {cluster.connectors.map((connector) => (
                  <button
                    key={connector.name}
                    type="button"
                    className="secondary"
                    onClick={() => void singleSignOn(connector)}
                    disabled={busy !== undefined}
                  >
                    Sign in with {connector.display}
                  </button>
                ))}
              </div>
            )}
          </>
        ) : (
          <div>
            <p>Your password is right. Now prove it is you with your second factor.</p>
            {step.challenge.webauthn && (
              <button type="button" onClick={() => void useKey(step.challenge)} disabled={busy !== undefined}>
                Use my security key
              </button>
            )}
            {step.challenge.totpAllowed && (
              <form onSubmit={(e) => submitCode(e, step.challenge)}>
                <label htmlFor="otp">Code from your authenticator app</label>
                <input
                  id="otp"
                  inputMode="numeric"
                  autoComplete="one-time-code"
                  value={code}
                  onChange={(e) => setCode(e.target.value)}
                  required
                />
                <button type="submit" disabled={busy !== undefined}>
                  Verify code
                </button>
              </form>
            )}
            <button type="button" className="link" onClick={() => setStep({ kind: 'password' })}>
              Start again
            </button>
          </div>
        )}
      </section>
    </main>
  );
}
