// The desktop backend: the contract bound to the client core by one handler table, which both hosts
// (Electron IPC, the browser host's WebSocket) carry unchanged. Every handler is bound by bind.ts: its
// argument validated before anything else (invariant 3; bad input changes nothing, invariant 6), run
// through retryWithRelogin, and a Result holding view models only (invariant 1).
import packageJson from '../../package.json' with { type: 'json' };
import { addDevice, listDevices, removeDevice } from '../../client/ceremonies/devices';
import { loginPasswordless, loginWithPassword, logout } from '../../client/ceremonies/login';
import { formatClusterAddress, parseClusterAddress } from '../../client/cluster-trust';
import { enrollThisDevice, thisDeviceStatus } from '../../client/device-trust/enroll';
import { CardSessions } from '../../client/hardware/piv/card-sessions';
import type { KeyStoreKind } from '../../client/keystore';
import { listReachableNodes } from '../../client/ssh/nodes';
import type { prepareSsh } from '../../client/ssh/session';
import type { Profile, ProfileStore } from '../../client/profiles';
import { ensureTrustedCluster, notSignedIn } from '../../client/session';
import { sessionNoticeSchema } from '../../preload/contract';
import type {
  DeepLinkEvent,
  EventName,
  EventPayloads,
  HandlerTable,
  ProfileView,
  Unsubscribe,
} from '../../preload/contract';
import { clockFromEnv } from '../../proto/clock';
import type { Clock } from '../../proto/clock';
import { DeepLinkInbox, receiveDeepLink } from './deep-link-inbox';
import { webApprovalSteps } from './web-approval';
import type { OpenInBrowser } from './web-approval';
import { watchProfiles } from './profile-watcher';
import { handlerBinder } from './bind';
import { createRelogin, earlyReason, seedNotice } from './relogin';
import { ssoLoginSteps } from './sso-login';
import type { Relogin } from './relogin';
import { SessionWatcher } from './session-watcher';
import { PromptBroker } from './prompt-broker';
import type { CeremonyPrompts } from './prompt-broker';
import { TerminalSessions } from './terminals';
import { clusterView, deviceTrustView, deviceView, enrolledDeviceView, nodeView, profileView } from './views';

/** What the progress prompt says while this device's TPM works (seconds, on a real TPM). */
export const TPM_WORKING = "Working with this device's TPM…";

export interface BackendOptions {
  profiles: ProfileStore;
  keystoreKind: KeyStoreKind;
  /** The host's environment: the hardware it names (KEYPORT_TPM_TCTI, KEYPORT_DEVICE_ASSET_TAG, …). */
  env?: NodeJS.ProcessEnv;
  /** Watch KEYPORT_HOME for the CLI's logins and logouts (default true). */
  watchProfiles?: boolean;
  /** Called when a window's renderer shows its first interactive screen (`app.ready`). */
  onRendererReady?: () => void;
  /** The PIV cards' long-lived sessions (default: new ones, idle after 15 minutes on the service clock). */
  cards?: CardSessions;
  /** The service clock for held keyport:// links and the session watcher (default: `env`'s, proto/clock). */
  clock?: Clock;
  /** The session watcher: "ends soon" this long before the expiry (default 10 minutes), its tick. */
  sessionNotices?: { warnBeforeMs?: number; tickMs?: number };
  /** Terminal sessions: how many at most, and the ceremony (tests wrap it to keep a tab's certificate). */
  terminals?: { max?: number; prepare?: typeof prepareSsh };
  /**
   * Opens a URL in the person's default browser (the host's way): the web-session approval's confirm URL,
   * and an SSO login's IdP page (checked first: https only).
   */
  openInBrowser?: OpenInBrowser;
}

export interface Backend {
  handlers: HandlerTable;
  on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): Unsubscribe;
  broker: PromptBroker;
  /**
   * A keyport:// link from the host (Electron's open-url or argv, the browser host's socket): parsed, held
   * for its screen (the token stays here) and announced with onDeepLink. Never acts on it.
   */
  openDeepLink(link: unknown): Promise<DeepLinkEvent>;
  /** The request on hold; its take() hands the token, once, to the ceremony of the request's screen. */
  deepLinks: DeepLinkInbox;
  /** retryWithRelogin, which every handler runs through, and a relogin asked for (the CLI's request). */
  relogin: Relogin;
  /** Says when each signed-in session ends soon and ends (onSessionNotice). */
  sessions: SessionWatcher;
  /** Resolves once the profile watcher is running (at once when it is off). */
  ready: Promise<void>;
  close(): Promise<void>;
}

export function createBackend(options: BackendOptions): Backend {
  const { profiles, keystoreKind } = options;
  const env = options.env ?? process.env;
  // One PC/SC session per card for every call as the profile: a PIN-"once" key asks its PIN once while the
  // card stays in. Closed at sign-out and app quit (and by CardSessions at card removal, idle, errors).
  const cards = options.cards ?? new CardSessions();
  const listeners = new Map<EventName, Set<(payload: never) => void>>();
  const emit = <E extends EventName>(event: E, payload: EventPayloads[E]) => {
    for (const listener of listeners.get(event) ?? []) (listener as (p: EventPayloads[E]) => void)(payload);
  };
  const clock = options.clock ?? clockFromEnv(env);
  // Every notice is checked against the contract's schema before it leaves: a view model, no secret. One
  // that does not fit (a profile file written by hand with a 300-character user) is not sent, and never
  // throws out of the watcher's timer.
  const sessions = new SessionWatcher({
    clock,
    notify: (notice) => {
      const checked = sessionNoticeSchema.safeParse(notice);
      if (checked.success) emit('onSessionNotice', checked.data);
    },
    ...options.sessionNotices,
  });
  // One view per address, so the watcher and the handlers never report the same change twice.
  const reported = new Map<string, string>();
  const reportProfile = (address: string, profile: ProfileView | null) => {
    const print = JSON.stringify(profile);
    if (reported.get(address) === print) return;
    reported.set(address, print);
    if (profile) sessions.track(profile);
    else sessions.forget(address);
    emit('onProfileChanged', { address, profile });
  };
  const terminals = new TerminalSessions({
    profiles,
    env,
    sessionPrompts: () => broker.ceremony(),
    events: {
      data: (payload) => emit('onTerminalData', payload),
      ended: (payload) => emit('onTerminalEnded', payload),
    },
    ...(options.terminals?.max ? { maxSessions: options.terminals.max } : {}),
    ...(options.terminals?.prepare ? { prepare: options.terminals.prepare } : {}),
  });
  const watcher =
    options.watchProfiles === false
      ? undefined
      : watchProfiles(profiles, {
          onChange: (address, profile) => {
            // Signed out by `keyport logout`: the card's PIN, verified for the app, goes with the session.
            if (!profile) {
              void cards.closeAll();
              void terminals.closeCluster(address);
            }
            reportProfile(address, profile ? profileView(profile) : null);
          },
        });
  const deepLinks = new DeepLinkInbox({ clock });
  const approvals = webApprovalSteps({
    profiles,
    deepLinks,
    env,
    clock,
    cards,
    openInBrowser: options.openInBrowser,
  });
  const sso = ssoLoginSteps({ profiles, keystoreKind, openInBrowser: options.openInBrowser, env });
  const broker = new PromptBroker({
    prompt: (prompt) => emit('onPrompt', prompt),
    closed: (closed) => emit('onPromptClosed', closed),
  });

  async function withCeremony<T>(work: (prompts: CeremonyPrompts) => Promise<T>): Promise<T> {
    const prompts = broker.ceremony();
    try {
      return await work(prompts);
    } finally {
      prompts.finish();
    }
  }

  // Every call that a relogin can resolve signs in again (one prompt per cluster) and runs once more.
  const relogin = createRelogin({
    profiles,
    env,
    cards,
    ceremony: () => broker.ceremony(),
    onRenewed: (profile) => reportProfile(profile.address, profileView(profile)),
    sso,
  });
  const bind = handlerBinder(relogin);

  /** What a login asks of the PIV card when the cluster requires a hardware-backed key. */
  const loginHardware = (prompts: CeremonyPrompts) => ({
    notice: seedNotice(prompts),
    hardwareKey: {
      prompts: prompts.piv,
      ...(env.KEYPORT_PIV_SLOT ? { envSlot: env.KEYPORT_PIV_SLOT } : {}),
    },
  });

  async function enroll(prompts: CeremonyPrompts, address: string, token: string | undefined) {
    const enrolled = await enrollThisDevice(profiles, await signedIn(address), {
      env,
      ...(token ? { token } : {}),
      piv: prompts.piv,
      cards,
      // Self-enrollment registers a device: where MFA for admin actions applies, a touch of the key.
      adminMfa: { prompts, signal: prompts.signal },
      // One prompt from the first TPM step to the last; a failure closes it with the ceremony.
      onProgress: (step) => {
        if (step === 'reading-tpm') prompts.progress(TPM_WORKING);
        if (step === 'done') prompts.progressDone();
      },
    });
    return enrolledDeviceView(enrolled);
  }

  async function signOut(address?: string) {
    const removed = await logout(profiles, address);
    // The card's PIN, verified for this session, does not outlive it; nor do its terminals.
    if (removed) await terminals.closeCluster(removed.address);
    await cards.closeAll();
    if (removed) reportProfile(removed.address, null);
    return removed ? profileView(removed) : null;
  }

  /** The signed-in profile of `cluster` (the current one when omitted). */
  async function signedIn(cluster?: string): Promise<Profile> {
    const address = cluster ? formatClusterAddress(parseClusterAddress(cluster)) : undefined;
    const profile = await profiles.getProfile(address);
    if (!profile) throw notSignedIn(`sign in to ${address ?? 'a cluster'} first`);
    return profile;
  }

  const handlers: HandlerTable = {
    'clusters.add': bind('clusters.add', ({ address, caPin }) =>
      withCeremony(async (prompts) =>
        clusterView(
          await ensureTrustedCluster(profiles, parseClusterAddress(address), { caPin, prompt: prompts }),
        ),
      ),
    ),
    'clusters.list': bind('clusters.list', async () =>
      (await profiles.listTrustedClusters()).map(clusterView),
    ),
    'clusters.remove': bind('clusters.remove', async ({ address }) => {
      const normalized = formatClusterAddress(parseClusterAddress(address));
      // A session on a cluster that is no longer trusted cannot be used; end it with the trust.
      if (await profiles.getProfile(normalized)) await signOut(normalized);
      await profiles.forgetCluster(normalized);
      return null;
    }),
    'auth.login': bind('auth.login', (argument) =>
      withCeremony(async (prompts) => {
        const { notice, hardwareKey } = loginHardware(prompts);
        const profile = await loginWithPassword({
          profiles,
          address: parseClusterAddress(argument.address),
          user: argument.user,
          keystore: keystoreKind,
          ttlSeconds: argument.ttlSeconds,
          mfa: argument.secondFactor,
          signal: prompts.signal,
          device: { env },
          prompts: { ...prompts, password: async () => argument.password, notice },
          hardwareKey,
        });
        const view = profileView(profile);
        reportProfile(view.address, view);
        return view;
      }),
    ),
    'auth.loginPasswordless': bind('auth.loginPasswordless', (argument) =>
      withCeremony(async (prompts) => {
        const { notice, hardwareKey } = loginHardware(prompts);
        const profile = await loginPasswordless({
          profiles,
          address: parseClusterAddress(argument.address),
          user: argument.user,
          keystore: keystoreKind,
          ttlSeconds: argument.ttlSeconds,
          signal: prompts.signal,
          device: { env },
          prompts: { ...prompts, notice },
          hardwareKey,
        });
        const view = profileView(profile);
        reportProfile(view.address, view);
        return view;
      }),
    ),
    'auth.connectors': bind('auth.connectors', ({ address }) => sso.connectors(address)),
    'auth.loginSso': bind('auth.loginSso', (argument) =>
      withCeremony(async (prompts) => {
        const view = profileView(await sso.login(prompts, argument));
        reportProfile(view.address, view);
        return view;
      }),
    ),
    'auth.logout': bind('auth.logout', (argument) => signOut(argument?.address)),
    // The banner's (or the tray's) "Sign in again": the relogin prompt now, joined with one already open.
    'auth.signInAgain': bind('auth.signInAgain', async ({ address }) => {
      const profile = await signedIn(address);
      const { reason, cause } = earlyReason(profile, clock());
      return profileView(await relogin.signInAgain(profile.address, reason, cause));
    }),
    'auth.sessionNotices': bind('auth.sessionNotices', async () =>
      sessions.notices().flatMap((notice) => {
        const checked = sessionNoticeSchema.safeParse(notice);
        return checked.success ? [checked.data] : [];
      }),
    ),
    'auth.status': bind('auth.status', async (argument) => {
      const profile = await profiles.getProfile(
        argument?.address ? formatClusterAddress(parseClusterAddress(argument.address)) : undefined,
      );
      return profile ? profileView(profile) : null;
    }),
    'mfa.list': bind('mfa.list', () =>
      withCeremony(async (prompts) =>
        (await listDevices(profiles, { piv: prompts.piv, cards })).map(deviceView),
      ),
    ),
    'mfa.add': bind('mfa.add', ({ name, passwordless, existing }) =>
      withCeremony(async (prompts) =>
        deviceView(
          await addDevice(profiles, {
            name: name ?? prompts.deviceName,
            type: 'webauthn',
            passwordless,
            existing,
            prompts,
            piv: prompts.piv,
            cards,
            signal: prompts.signal,
          }),
        ),
      ),
    ),
    'mfa.remove': bind('mfa.remove', ({ name, existing }) =>
      withCeremony(async (prompts) => {
        await removeDevice(profiles, {
          name,
          existing,
          prompts,
          piv: prompts.piv,
          cards,
          signal: prompts.signal,
        });
        return null;
      }),
    ),
    'device.status': bind('device.status', (argument) =>
      withCeremony(async (prompts) =>
        deviceTrustView(
          await thisDeviceStatus(profiles, await signedIn(argument?.cluster), {
            env,
            piv: prompts.piv,
            cards,
          }),
        ),
      ),
    ),
    'device.enroll': bind('device.enroll', ({ cluster, token }) =>
      withCeremony(async (prompts) => enroll(prompts, (await signedIn(cluster)).address, token)),
    ),
    'nodes.list': bind('nodes.list', (argument) =>
      withCeremony(async (prompts) =>
        (await listReachableNodes(profiles, await signedIn(argument?.cluster), { piv: prompts.piv }))
          .map(nodeView)
          .sort((a, b) => a.name.localeCompare(b.name)),
      ),
    ),
    'deepLinks.current': bind('deepLinks.current', async () => deepLinks.current()),
    'deepLinks.dismiss': bind('deepLinks.dismiss', async ({ id }) => {
      deepLinks.dismiss(id);
      return null;
    }),
    'terminals.open': bind('terminals.open', ({ cluster, node, login, cols, rows }) =>
      withCeremony(async (prompts) =>
        terminals.open({ cluster: (await signedIn(cluster)).address, node, login, cols, rows }, prompts),
      ),
    ),
    'terminals.input': bind('terminals.input', async ({ id, data }) => {
      terminals.input(id, data);
      return null;
    }),
    'terminals.resize': bind('terminals.resize', async ({ id, cols, rows }) => {
      terminals.resize(id, cols, rows);
      return null;
    }),
    'terminals.close': bind('terminals.close', async ({ id }) => {
      await terminals.close(id);
      return null;
    }),
    'deepLinks.inspect': bind('deepLinks.inspect', ({ id }) => approvals.inspect(id)),
    'deepLinks.authorize': bind('deepLinks.authorize', ({ id }) =>
      withCeremony((prompts) =>
        approvals.authorize(id, prompts.piv, (step) => {
          if (step === 'reading-tpm') prompts.progress(TPM_WORKING);
          if (step === 'done') prompts.progressDone();
        }),
      ),
    ),
    'prompts.answer': bind('prompts.answer', async ({ id, value }) => {
      broker.answer(id, value);
      return null;
    }),
    'prompts.cancel': bind('prompts.cancel', async ({ id }) => {
      broker.cancel(id);
      return null;
    }),
    'prompts.current': bind('prompts.current', async () => broker.current() ?? null),
    'app.info': bind('app.info', async () => ({
      name: 'Keyport Connect',
      version: packageJson.version,
      platform: `${process.platform}-${process.arch}`,
      keystore: keystoreKind,
      keyportHome: profiles.home,
      labSecurityKey: Boolean(env.KEYPORT_LAB_SECURITY_KEY),
    })),
    'app.ready': bind('app.ready', async () => {
      options.onRendererReady?.();
      return null;
    }),
  };

  return {
    handlers,
    broker,
    relogin,
    sessions,
    deepLinks,
    async openDeepLink(link) {
      const event = await receiveDeepLink(link, deepLinks, () => profiles.listTrustedClusters());
      emit('onDeepLink', event);
      return event;
    },
    ready: watcher ? watcher.then(() => undefined) : Promise.resolve(),
    async close() {
      (await watcher)?.close();
      sessions.close();
      await terminals.closeAll();
      await cards.dispose();
    },
    on(event, listener) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as (payload: never) => void);
      return () => void set.delete(listener as (payload: never) => void);
    },
  };
}
