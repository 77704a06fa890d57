import { useEffect, useId, useRef, useState } from 'react';
import type { FormEvent } from 'react';
import type { ClusterView, ConnectorView, ProfileView, Result } from '../../../../preload/contract';
import { fieldProblem } from '../../services/errors';
import { useAction } from '../../services/hooks';
import { useKeyport } from '../../services/KeyportContext';
import { ErrorAlert } from '../components/ErrorAlert';
import { recoverFocus } from '../components/focus';
import { Progress } from '../components/Progress';
import { SecondFactorChoice } from '../components/SecondFactorChoice';
import type { SecondFactor } from '../components/SecondFactorChoice';
import { describeSsoError, SsoButtons, useConnectors } from './SsoButtons';

interface LoginProps {
  cluster: ClusterView;
  /** The user to pre-fill (the one whose session ended), if known. */
  initialUser?: string;
  onSignedIn(profile: ProfileView): void;
}

export function Login({ cluster, initialUser = '', onSignedIn }: LoginProps) {
  const api = useKeyport();
  const login = useAction();
  const [user, setUser] = useState(initialUser);
  // The password lives here, in the field, until it is sent; it is cleared as soon as it is.
  const [password, setPassword] = useState('');
  const [factor, setFactor] = useState<SecondFactor>('key');
  // Which kind of sign-in the error in the form is from: an SSO refusal is not a wrong password.
  const [viaSso, setViaSso] = useState(false);
  const connectors = useConnectors(cluster.address);
  const userRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);
  const ids = { user: useId(), password: useId(), heading: useId() };
  const offersChoice = cluster.secondFactors.includes('otp') && cluster.secondFactors.includes('webauthn');

  // The form opens ready to type: on the user name, or on the password when the name is known already.
  // Only when nothing else holds the focus (a dialog, or a field the person already chose).
  useEffect(() => {
    recoverFocus((initialUser ? passwordRef : userRef).current);
  }, [initialUser]);

  async function finish(result: Result<ProfileView> | undefined) {
    if (!result) return;
    if (result.ok) return onSignedIn(result.value);
    // A wrong password is typed again; otherwise focus comes back only if the wait lost it.
    const field = (user ? passwordRef : userRef).current;
    if (result.error.code === 'ACCESS_DENIED') field?.focus();
    else recoverFocus(field);
  }

  async function signIn(event: FormEvent) {
    event.preventDefault();
    if (login.busy) return;
    if (!user) {
      login.setError(fieldProblem('user', 'Give your user name.'));
      return userRef.current?.focus();
    }
    if (!password) {
      login.setError(fieldProblem('password', 'Give your password.'));
      return passwordRef.current?.focus();
    }
    const sent = password;
    setPassword('');
    setViaSso(false);
    await finish(
      await login.run(() =>
        api.auth.login({
          address: cluster.address,
          user,
          password: sent,
          secondFactor: offersChoice ? factor : 'auto',
        }),
      ),
    );
  }

  async function signInWithoutPassword() {
    if (login.busy) return;
    setViaSso(false);
    await finish(
      await login.run(() =>
        api.auth.loginPasswordless(user ? { address: cluster.address, user } : { address: cluster.address }),
      ),
    );
  }

  async function signInWithSso(connector: ConnectorView) {
    if (login.busy) return;
    setViaSso(true);
    const result = await login.run(() =>
      api.auth.loginSso({ address: cluster.address, connector: connector.name }),
    );
    if (result?.ok) onSignedIn(result.value);
  }

  return (
    <section className="screen" aria-labelledby={ids.heading}>
      <h2 id={ids.heading}>Sign in to {cluster.name}</h2>
      <p className="muted">{cluster.address}</p>
      <form
        className="panel form login-form"
        aria-labelledby={ids.heading}
        aria-busy={login.busy || undefined}
        onSubmit={signIn}
        noValidate
      >
        <div className="field">
          <label htmlFor={ids.user}>User</label>
          <input
            id={ids.user}
            ref={userRef}
            type="text"
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            value={user}
            onChange={(event) => setUser(event.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor={ids.password}>Password</label>
          <input
            id={ids.password}
            ref={passwordRef}
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(event) => setPassword(event.target.value)}
          />
        </div>
        {offersChoice && <SecondFactorChoice name="second-factor" value={factor} onChange={setFactor} />}
        <ErrorAlert
          error={login.error}
          held={login.heldError}
          {...(viaSso ? { describe: describeSsoError } : {})}
        />
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={login.busy}>
            Sign in
          </button>
          {cluster.allowPasswordless && (
            <button
              type="button"
              className="button"
              disabled={login.busy}
              onClick={() => void signInWithoutPassword()}
            >
              Sign in without a password
            </button>
          )}
        </div>
        <SsoButtons connectors={connectors} disabled={login.busy} onSignIn={signInWithSso} />
        <Progress active={login.busy} label="Signing in…" />
      </form>
    </section>
  );
}
