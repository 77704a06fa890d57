// The web UI: sign in, then the home screen; signing out (or a session that ended) comes back here.
import { useCallback, useEffect, useState } from 'react';
import type { WebSessionView } from '../../../proto/webapi';
import { api, ApiError } from '../api';
import { Home } from './Home';
import { SignIn } from './SignIn';

type State =
  { screen: 'loading' } | { screen: 'signIn'; notice?: string } | { screen: 'home'; view: WebSessionView };

export function App() {
  const [state, setState] = useState<State>({ screen: 'loading' });

  const loadSession = useCallback(async (notice?: string) => {
    try {
      setState({ screen: 'home', view: await api.session() });
    } catch (error) {
      const message =
        error instanceof ApiError && error.detail.code !== 'UNAUTHENTICATED' ? error.message : notice;
      setState({ screen: 'signIn', ...(message ? { notice: message } : {}) });
    }
  }, []);

  useEffect(() => {
    void loadSession();
  }, [loadSession]);

  useEffect(() => {
    document.title = state.screen === 'home' ? `${state.view.user} · Keyport` : 'Sign in · Keyport';
  }, [state]);

  if (state.screen === 'loading') {
    return (
      <main className="page">
        <p role="status">Loading…</p>
      </main>
    );
  }
  if (state.screen === 'signIn')
    return <SignIn notice={state.notice} onSignedIn={() => void loadSession()} />;
  return (
    <Home
      view={state.view}
      onSignedOut={(notice) => setState({ screen: 'signIn', ...(notice ? { notice } : {}) })}
    />
  );
}
