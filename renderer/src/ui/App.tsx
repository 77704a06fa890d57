import { lazy, Suspense, useCallback, useEffect, useRef } from 'react';
import type { KeyportApi } from '../../../preload/contract';
import { useKeyportApp } from '../services/appState';
import { OpenEnrollmentContext } from '../services/deviceTrust';
import type { AppActions, AppState } from '../services/appState';
import { KeyportContext } from '../services/KeyportContext';
import { Account } from './Account/Account';
import { Clusters } from './Clusters/Clusters';
import { AuthorizeWebSession, RefusedLink } from './DeepLink/AuthorizeWebSession';
import { ErrorAlert } from './components/ErrorAlert';
import { Progress } from './components/Progress';
import { Login } from './Login/Login';
import { PromptsHost } from './Prompts/PromptsHost';
import { SessionBanner } from './Relogin/SessionBanner';
import { useTerminalTabs } from '../services/terminals';
import type { TerminalTabs as Tabs } from '../services/terminals';
import { Servers } from './Servers/Servers';
import './app.css';

// xterm.js is most of a terminal's weight: it loads with the first tab, not with the app.
const TerminalTabs = lazy(() =>
  import('./Terminals/TerminalTabs').then((module) => ({ default: module.TerminalTabs })),
);

export function App({ api }: { api: KeyportApi }) {
  const { state, actions } = useKeyportApp(api);
  const terminals = useTerminalTabs(api);
  const { screen, profile } = state;
  // Once the first screen (a login form, most often) is on show and takes input, the host hears so: the
  // demo says "ready" then, and not when the window is still blank.
  const { navigate } = actions;
  const openEnrollment = useCallback(() => navigate({ name: 'account', focus: 'device' }), [navigate]);
  const announced = useRef(false);
  useEffect(() => {
    if (announced.current || screen.name === 'loading') return;
    announced.current = true;
    void api.app.ready();
  }, [api, screen.name]);
  return (
    <KeyportContext value={api}>
      <OpenEnrollmentContext value={profile ? openEnrollment : null}>
        <div className="app">
          <header className="app-header">
            <h1>Keyport Connect</h1>
            <nav aria-label="Main">
              <ul className="nav-list">
                <li>
                  <button
                    type="button"
                    className="nav-button"
                    aria-current={screen.name === 'clusters' ? 'page' : undefined}
                    onClick={() => actions.navigate({ name: 'clusters' })}
                  >
                    Clusters
                  </button>
                </li>
                {profile && (
                  <li>
                    <button
                      type="button"
                      className="nav-button"
                      aria-current={screen.name === 'servers' ? 'page' : undefined}
                      onClick={() => actions.navigate({ name: 'servers' })}
                    >
                      Servers
                    </button>
                  </li>
                )}
                {profile && terminals.tabs.length > 0 && (
                  <li>
                    <button
                      type="button"
                      className="nav-button"
                      aria-current={screen.name === 'terminals' ? 'page' : undefined}
                      onClick={() => actions.navigate({ name: 'terminals' })}
                    >
                      Terminals ({terminals.tabs.length})
                    </button>
                  </li>
                )}
                {profile && (
                  <li>
                    <button
                      type="button"
                      className="nav-button"
                      aria-current={screen.name === 'account' ? 'page' : undefined}
                      onClick={() => actions.navigate({ name: 'account' })}
                    >
                      Account
                    </button>
                  </li>
                )}
              </ul>
            </nav>
            {profile && <p className="signed-in">Signed in as {profile.user}</p>}
          </header>
          <SessionBanner profile={profile} />
          <main className="app-main" tabIndex={-1} aria-busy={screen.name === 'loading' || undefined}>
            {state.startupError && (
              <ErrorAlert
                error={state.startupError}
                action={
                  <button type="button" className="button" onClick={actions.reload}>
                    Try again
                  </button>
                }
              />
            )}
            <CurrentScreen state={state} actions={actions} terminals={terminals} />
            {profile && terminals.tabs.length > 0 && (
              <Suspense fallback={<Progress active label="Loading the terminal…" />}>
                <TerminalTabs terminals={terminals} hidden={screen.name !== 'terminals'} />
              </Suspense>
            )}
          </main>
          {state.info && (
            <footer className="app-footer">
              <p>
                {state.info.name} {state.info.version}
                {state.info.labSecurityKey && <span className="badge">Lab security key</span>}
              </p>
            </footer>
          )}
        </div>
        <PromptsHost />
      </OpenEnrollmentContext>
    </KeyportContext>
  );
}

function CurrentScreen({
  state,
  actions,
  terminals,
}: {
  state: AppState;
  actions: AppActions;
  terminals: Tabs;
}) {
  const { screen, profile, clusters } = state;
  switch (screen.name) {
    case 'loading':
      return <Progress active label="Loading…" />;
    case 'clusters':
      return (
        <Clusters
          clusters={clusters}
          signedInAddress={profile?.address ?? null}
          onSignIn={(address) => actions.navigate({ name: 'login', address })}
          onOpenAccount={() => actions.navigate({ name: 'account' })}
          refreshClusters={actions.refreshClusters}
        />
      );
    case 'login': {
      const cluster = clusters.find((c) => c.address === screen.address);
      if (!cluster) return null;
      return (
        <Login
          key={cluster.address}
          cluster={cluster}
          initialUser={state.lastUser ?? cluster.lastUser ?? ''}
          onSignedIn={actions.signedIn}
        />
      );
    }
    case 'account':
      if (!profile) return null;
      return (
        <Account
          profile={profile}
          onSignedOut={actions.signedOut}
          onSignInAgain={() => actions.navigate({ name: 'login', address: profile.address })}
          focusDevice={screen.focus === 'device'}
        />
      );
    case 'servers':
      if (!profile) return null;
      return (
        <Servers
          key={profile.address}
          profile={profile}
          onSignInAgain={() => actions.navigate({ name: 'login', address: profile.address })}
          onConnect={(node, login) => {
            // The real size follows once the tab's terminal is fitted (terminals.resize).
            terminals.open({ cluster: profile.address, node: node.name, login, cols: 80, rows: 24 });
            actions.navigate({ name: 'terminals' });
          }}
        />
      );
    case 'authorizeWebSession':
      return (
        <AuthorizeWebSession
          key={screen.request.id}
          request={screen.request}
          cluster={clusters.find((c) => c.address === screen.request.cluster.address)}
          signedIn={profile}
          onSignedIn={actions.signedIn}
          onClose={actions.closeLink}
        />
      );
    case 'refusedLink':
      return <RefusedLink error={screen.error} onClose={actions.closeLink} />;
    case 'terminals':
      // The tabs themselves stay mounted below every screen (TerminalTabs), so each keeps its terminal.
      return terminals.tabs.length === 0 ? (
        <p className="empty">No terminal is open. Connect to a server from Servers.</p>
      ) : null;
  }
}
