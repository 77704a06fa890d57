// A test double of the IPC boundary (window.keyport): every method records its call and answers with a
// scripted Result; events can be emitted as the backend would. The real backend behind the boundary is
// covered by main/'s tests and the end-to-end tests.
import type {
  AppInfo,
  ClusterView,
  ConnectorView,
  ContractError,
  DeviceTrustView,
  EventName,
  EventPayloads,
  KeyportApi,
  MethodArgs,
  MethodName,
  MethodResults,
  MfaDeviceView,
  NodeView,
  ProfileView,
  Result,
} from '../../../preload/contract';

export type Handler<M extends MethodName> = (
  argument: MethodArgs[M],
) => Result<MethodResults[M]> | Promise<Result<MethodResults[M]>>;

export interface Call {
  method: MethodName;
  argument: unknown;
}

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = (
  code: ContractError['code'],
  message = 'failed',
  details: ContractError['details'] = {},
) => ({ ok: false, error: { code, message, details } }) as const;

export function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export const appInfo: AppInfo = {
  name: 'Keyport Connect',
  version: '0.1.0',
  platform: 'linux-x64',
  keystore: 'keychain',
  keyportHome: '/home/alice/.keyport',
  labSecurityKey: false,
};

export function cluster(overrides: Partial<ClusterView> = {}): ClusterView {
  return {
    address: 'auth.example.com:3025',
    name: 'example',
    caPin: `sha256:${'ab'.repeat(32)}`,
    passwordlessDefault: false,
    secondFactors: ['webauthn'],
    allowPasswordless: false,
    trustedAtMs: 1_700_000_000_000,
    ...overrides,
  };
}

export function profile(overrides: Partial<ProfileView> = {}): ProfileView {
  const now = Date.now();
  return {
    address: 'auth.example.com:3025',
    cluster: 'example',
    user: 'alice',
    roles: ['access', 'editor'],
    logins: ['alice', 'root'],
    mfaVerified: true,
    validAfterMs: now,
    expiresMs: now + 12 * 3600_000,
    keystore: 'keychain',
    sessionKey: { kind: 'keychain' },
    ...overrides,
  };
}

export function device(overrides: Partial<MfaDeviceView> = {}): MfaDeviceView {
  return {
    id: 'dev-1',
    name: 'yubikey',
    type: 'webauthn',
    passkey: false,
    addedMs: 1_700_000_000_000,
    lastUsedMs: 1_700_000_000_000,
    ...overrides,
  };
}

export function deviceTrust(overrides: Partial<DeviceTrustView> = {}): DeviceTrustView {
  return {
    state: 'registered',
    assetTag: 'LAPTOP-42',
    osType: 'linux',
    mode: 'optional',
    trustedInSession: false,
    selfEnrollmentAllowed: false,
    ...overrides,
  };
}

export interface FakeState {
  clusters?: ClusterView[];
  profile?: ProfileView | null;
  devices?: MfaDeviceView[];
  deviceTrust?: DeviceTrustView;
  nodes?: NodeView[];
  /** The SSO connectors every cluster lists (auth.connectors). */
  connectors?: ConnectorView[];
}

export interface FakeKeyport {
  api: KeyportApi;
  calls: Call[];
  /** The arguments of every call to `method`, in order. */
  callsTo<M extends MethodName>(method: M): MethodArgs[M][];
  respond<M extends MethodName>(method: M, handler: Handler<M> | Result<MethodResults[M]>): void;
  emit<E extends EventName>(event: E, payload: EventPayloads[E]): void;
  listenerCount(event: EventName): number;
}

export function fakeKeyport(state: FakeState = {}): FakeKeyport {
  const calls: Call[] = [];
  const handlers = new Map<MethodName, Handler<MethodName>>();
  const listeners = new Map<EventName, Set<(payload: never) => void>>();

  const defaults: { [M in MethodName]?: Handler<M> } = {
    'app.info': () => ok(appInfo),
    'app.ready': () => ok(null),
    'clusters.list': () => ok(state.clusters ?? []),
    'auth.status': () => ok(state.profile ?? null),
    'auth.sessionNotices': () => ok([]),
    'auth.connectors': () => ok(state.connectors ?? []),
    'mfa.list': () => ok(state.devices ?? []),
    'device.status': () => ok(state.deviceTrust ?? deviceTrust({ mode: 'off', state: 'not_registered' })),
    'nodes.list': () => ok(state.nodes ?? []),
    'deepLinks.current': () => ok(null),
    'deepLinks.dismiss': () => ok(null),
    'terminals.input': () => ok(null),
    'terminals.resize': () => ok(null),
    'terminals.close': () => ok(null),
    'prompts.answer': () => ok(null),
    'prompts.cancel': () => ok(null),
    'prompts.current': () => ok(null),
  };

  function invoke<M extends MethodName>(
    method: M,
    argument: MethodArgs[M],
  ): Promise<Result<MethodResults[M]>> {
    calls.push({ method, argument });
    const handler = (handlers.get(method) ?? defaults[method]) as Handler<M> | undefined;
    if (!handler) return Promise.resolve(fail('INTERNAL', `No scripted answer for ${method}.`));
    return Promise.resolve(handler(argument));
  }

  function subscribe<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void) {
    let set = listeners.get(event);
    if (!set) listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => void set.delete(listener as (payload: never) => void);
  }

  const api: KeyportApi = {
    clusters: {
      add: (argument) => invoke('clusters.add', argument),
      list: (argument) => invoke('clusters.list', argument),
      remove: (argument) => invoke('clusters.remove', argument),
    },
    auth: {
      login: (argument) => invoke('auth.login', argument),
      loginPasswordless: (argument) => invoke('auth.loginPasswordless', argument),
      logout: (argument) => invoke('auth.logout', argument),
      status: (argument) => invoke('auth.status', argument),
      signInAgain: (argument) => invoke('auth.signInAgain', argument),
      sessionNotices: (argument) => invoke('auth.sessionNotices', argument),
      connectors: (argument) => invoke('auth.connectors', argument),
      loginSso: (argument) => invoke('auth.loginSso', argument),
    },
    mfa: {
      list: (argument) => invoke('mfa.list', argument),
      add: (argument) => invoke('mfa.add', argument),
      remove: (argument) => invoke('mfa.remove', argument),
    },
    device: {
      status: (argument) => invoke('device.status', argument),
      enroll: (argument) => invoke('device.enroll', argument),
    },
    nodes: {
      list: (argument) => invoke('nodes.list', argument),
    },
    deepLinks: {
      current: (argument) => invoke('deepLinks.current', argument),
      dismiss: (argument) => invoke('deepLinks.dismiss', argument),
      inspect: (argument) => invoke('deepLinks.inspect', argument),
      authorize: (argument) => invoke('deepLinks.authorize', argument),
    },
    terminals: {
      open: (argument) => invoke('terminals.open', argument),
      input: (argument) => invoke('terminals.input', argument),
      resize: (argument) => invoke('terminals.resize', argument),
      close: (argument) => invoke('terminals.close', argument),
    },
    prompts: {
      answer: (argument) => invoke('prompts.answer', argument),
      cancel: (argument) => invoke('prompts.cancel', argument),
      current: (argument) => invoke('prompts.current', argument),
    },
    app: {
      info: (argument) => invoke('app.info', argument),
      ready: (argument) => invoke('app.ready', argument),
    },
    onPrompt: (listener) => subscribe('onPrompt', listener),
    onPromptClosed: (listener) => subscribe('onPromptClosed', listener),
    onProfileChanged: (listener) => subscribe('onProfileChanged', listener),
    onDeepLink: (listener) => subscribe('onDeepLink', listener),
    onTerminalData: (listener) => subscribe('onTerminalData', listener),
    onTerminalEnded: (listener) => subscribe('onTerminalEnded', listener),
    onSessionNotice: (listener) => subscribe('onSessionNotice', listener),
  };

  return {
    api,
    calls,
    callsTo: <M extends MethodName>(method: M) =>
      calls.filter((c) => c.method === method).map((c) => c.argument as MethodArgs[M]),
    respond(method, handler) {
      handlers.set(
        method,
        (typeof handler === 'function' ? handler : () => handler) as unknown as Handler<MethodName>,
      );
    },
    emit(event, payload) {
      for (const listener of [...(listeners.get(event) ?? [])]) {
        (listener as (p: typeof payload) => void)(payload);
      }
    },
    listenerCount: (event) => listeners.get(event)?.size ?? 0,
  };
}
