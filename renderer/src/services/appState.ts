// The app's navigation and session state, kept over window.keyport: which screen shows, the trusted
// clusters, the signed-in profile. A pure reducer (tested on its own) plus one hook that feeds it from the
// startup calls and the onProfileChanged event.
import { useEffect, useMemo, useReducer, useState } from 'react';
import type {
  AppInfo,
  ClusterView,
  ContractError,
  DeepLinkEvent,
  DeepLinkRequest,
  KeyportApi,
  ProfileView,
  Result,
} from '../../../preload/contract';
import { call } from './keyport';

export type Screen =
  | { name: 'loading' }
  | { name: 'clusters' }
  | { name: 'login'; address: string }
  /** `focus: 'device'`: opened to enroll this device (a DEVICE_TRUST_REQUIRED refusal). */
  | { name: 'account'; focus?: 'device' }
  /** The signed-in cluster's Servers view. */
  | { name: 'servers' }
  /** A keyport:// link asks to verify a browser (it fills in this screen, and does nothing else). */
  | { name: 'authorizeWebSession'; request: DeepLinkRequest }
  /** A keyport:// link was refused. */
  | { name: 'refusedLink'; error: ContractError }
  /** The terminal tabs (SSH sessions opened from Servers). */
  | { name: 'terminals' };

/** Screens that need a signed-in profile. */
const needsProfile = (screen: Screen) =>
  screen.name === 'account' || screen.name === 'servers' || screen.name === 'terminals';

export interface AppState {
  screen: Screen;
  info: AppInfo | null;
  clusters: ClusterView[];
  profile: ProfileView | null;
  /** Who was signed in last, to pre-fill the login after a sign-out. */
  lastUser: string | null;
  startupError: ContractError | null;
}

export type AppEvent =
  | {
      type: 'started';
      info: Result<AppInfo>;
      clusters: Result<ClusterView[]>;
      status: Result<ProfileView | null>;
      /** The keyport:// request on hold when the window opened (the app started by a link). */
      link?: Result<DeepLinkRequest | null>;
    }
  | { type: 'deepLink'; event: DeepLinkEvent }
  /** Back from a link's screen: the account when signed in, else a login or the cluster list. */
  | { type: 'linkClosed' }
  | { type: 'clustersLoaded'; clusters: ClusterView[] }
  | { type: 'profileChanged'; address: string; profile: ProfileView | null }
  | { type: 'navigate'; screen: Screen };

export const initialAppState: AppState = {
  screen: { name: 'loading' },
  info: null,
  clusters: [],
  profile: null,
  lastUser: null,
  startupError: null,
};

function firstError(...results: Result<unknown>[]): ContractError | null {
  for (const result of results) if (!result.ok) return result.error;
  return null;
}

/** Where to go when nobody is signed in: the login of a known cluster, else the cluster list. */
function loginOrClusters(clusters: ClusterView[], preferred?: string): Screen {
  const cluster = clusters.find((c) => c.address === preferred) ?? clusters[0];
  return cluster ? { name: 'login', address: cluster.address } : { name: 'clusters' };
}

function isLinkScreen(screen: Screen): boolean {
  return screen.name === 'authorizeWebSession' || screen.name === 'refusedLink';
}

export function appReducer(state: AppState, event: AppEvent): AppState {
  switch (event.type) {
    case 'started': {
      const clusters = event.clusters.ok ? event.clusters.value : [];
      const profile = event.status.ok ? event.status.value : null;
      return {
        info: event.info.ok ? event.info.value : null,
        clusters,
        profile,
        lastUser: profile?.user ?? null,
        startupError: firstError(event.info, event.clusters, event.status),
        // A link's screen first; an expired profile still shows its account, which offers to sign in again.
        screen:
          event.link?.ok && event.link.value
            ? { name: 'authorizeWebSession', request: event.link.value }
            : profile
              ? { name: 'account' }
              : loginOrClusters(clusters),
      };
    }
    case 'deepLink': {
      const screen: Screen =
        event.event.kind === 'refused'
          ? { name: 'refusedLink', error: event.event.error }
          : { name: 'authorizeWebSession', request: event.event };
      return { ...state, screen };
    }
    case 'linkClosed': {
      const screen: Screen = state.profile ? { name: 'account' } : loginOrClusters(state.clusters);
      return { ...state, screen };
    }
    case 'clustersLoaded': {
      const { screen } = state;
      const gone = screen.name === 'login' && !event.clusters.some((c) => c.address === screen.address);
      return { ...state, clusters: event.clusters, screen: gone ? { name: 'clusters' } : screen };
    }
    case 'profileChanged': {
      if (event.profile) {
        // A session renewed (a relogin, here or by the CLI) keeps what is on screen, a half-filled form
        // included; only a sign-in from the login screen moves on to the account.
        const renewed =
          state.profile?.address === event.address &&
          state.screen.name !== 'login' &&
          state.screen.name !== 'loading';
        // A link's screen stays: signing in is a step on the way to what it asks.
        const keep = renewed || isLinkScreen(state.screen);
        return {
          ...state,
          profile: event.profile,
          lastUser: event.profile.user,
          screen: keep ? state.screen : { name: 'account' },
        };
      }
      if (state.profile && state.profile.address !== event.address) return state;
      // Signed out (here, or by the CLI): the account on screen gives way to its cluster's login.
      const screen: Screen = needsProfile(state.screen)
        ? loginOrClusters(state.clusters, event.address)
        : state.screen;
      return { ...state, profile: null, screen };
    }
    case 'navigate': {
      if (needsProfile(event.screen) && !state.profile) return state;
      return { ...state, screen: event.screen };
    }
  }
}

export interface AppActions {
  navigate(screen: Screen): void;
  /** Lists the trusted clusters again (after an add or a remove). */
  refreshClusters(): Promise<Result<ClusterView[]>>;
  signedIn(profile: ProfileView): void;
  signedOut(address: string): void;
  /** Runs the startup calls again (after a startup error). */
  reload(): void;
  /** Leaves a keyport:// link's screen. */
  closeLink(): void;
}

export function useKeyportApp(api: KeyportApi): { state: AppState; actions: AppActions } {
  const [state, dispatch] = useReducer(appReducer, initialAppState);
  const [generation, setGeneration] = useState(0);

  useEffect(
    () =>
      api.onProfileChanged(({ address, profile }) => dispatch({ type: 'profileChanged', address, profile })),
    [api],
  );

  useEffect(() => api.onDeepLink((event) => dispatch({ type: 'deepLink', event })), [api]);

  useEffect(() => {
    let current = true;
    void Promise.all([
      call(() => api.app.info()),
      call(() => api.clusters.list()),
      call(() => api.auth.status()),
      call(() => api.deepLinks.current()),
    ]).then(([info, clusters, status, link]) => {
      if (current) dispatch({ type: 'started', info, clusters, status, link });
    });
    return () => {
      current = false;
    };
  }, [api, generation]);

  const actions = useMemo<AppActions>(
    () => ({
      navigate: (screen) => dispatch({ type: 'navigate', screen }),
      refreshClusters: async () => {
        const result = await call(() => api.clusters.list());
        if (result.ok) dispatch({ type: 'clustersLoaded', clusters: result.value });
        return result;
      },
      signedIn: (profile) => dispatch({ type: 'profileChanged', address: profile.address, profile }),
      signedOut: (address) => dispatch({ type: 'profileChanged', address, profile: null }),
      reload: () => setGeneration((g) => g + 1),
      closeLink: () => dispatch({ type: 'linkClosed' }),
    }),
    [api],
  );

  return { state, actions };
}
