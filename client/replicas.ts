// Several keyport-auth replicas of one cluster (one database, one CA): which one to connect to, and what
// may move to another when the one in use stops answering. The replica that answered last is tried first
// (remembered in this process, and with the trusted cluster when it changes); the stored order otherwise.
// A call that failed in the transport (never a refusal the service sent) is tried once more on the next
// replica only when it is a read: a write or a ceremony step may have been done before the answer was lost.
// One address whose name resolves to several replicas (DNS, the hosts file) is several replicas too: grpc-js
// dials its addresses in order and keeps the first that connects, and after a transport failure a new
// channel to the name passes over the one that stopped answering.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { KeyportError } from '../proto/errors';
import type { AdminServiceService } from '../proto/gen/keyport/v1/admin';
import type { AuthServiceService } from '../proto/gen/keyport/v1/auth';
import type { DeviceTrustServiceService } from '../proto/gen/keyport/v1/device';
import type { UserServiceService } from '../proto/gen/keyport/v1/user';
import type { NodeAccessServiceService } from '../proto/gen/keyport/v1/node';
import type { WebSessionServiceService } from '../proto/gen/keyport/v1/web_session';
import { connectCluster, connectSession, isTransportFailure } from './api';
import type { ClusterApi, ConnectOptions, SessionIdentity } from './api';
import { formatClusterAddress, parseClusterAddress } from './cluster-trust';
import type { ClusterAddress } from './cluster-trust';
import type { ProfileStore, TrustedCluster } from './profiles';

/** How long a replica among several may take to connect before the next one is tried. */
export const REPLICA_CONNECT_TIMEOUT_MS = 3000;

/** All the person hears of a move to another replica. */
export const RETRYING_NOTICE = 'retrying on another auth server';

/**
 * Every RPC, by whether it may be sent again to another replica after a transport failure: `read` changes
 * nothing; a `write` may have been applied before its answer was lost; a `ceremony` step spends or makes
 * something the next step needs, so the ceremony restarts from its first step instead (login does).
 * A new RPC does not compile until it is classified here.
 */
export const callKinds = {
  auth: {
    getClusterInfo: 'read',
    startSignup: 'ceremony',
    completeSignup: 'ceremony',
    createAuthenticateChallenge: 'ceremony',
    login: 'ceremony',
    startSsoLogin: 'ceremony',
    redeemSsoLogin: 'ceremony',
    createSsoChallenge: 'ceremony',
  },
  user: {
    ping: 'read',
    getStatus: 'read',
    listMfaDevices: 'read',
    createAuthenticateChallenge: 'ceremony',
    createRegisterChallenge: 'ceremony',
    addMfaDevice: 'ceremony',
    deleteMfaDevice: 'ceremony',
  },
  admin: {
    getClusterStatus: 'read',
    getResource: 'read',
    listResources: 'read',
    listAuditEvents: 'read',
    createResources: 'write',
    deleteResource: 'write',
    createUser: 'write',
    lockUser: 'write',
    unlockUser: 'write',
    registerNode: 'write',
  },
  nodes: {
    listNodes: 'read',
    isMfaRequired: 'ceremony',
    generateSessionCertificate: 'ceremony',
  },
  devices: {
    listDevices: 'read',
    getDeviceStatus: 'read',
    addDevice: 'write',
    deleteDevice: 'write',
    lockDevice: 'write',
    unlockDevice: 'write',
    createDeviceEnrollToken: 'write',
    beginDeviceEnrollment: 'ceremony',
    completeDeviceEnrollment: 'ceremony',
  },
  webSessions: {
    getWebSessionApproval: 'read',
    beginWebSessionApproval: 'ceremony',
    approveWebSession: 'ceremony',
  },
} as const satisfies {
  auth: Record<keyof typeof AuthServiceService, CallKind>;
  user: Record<keyof typeof UserServiceService, CallKind>;
  admin: Record<keyof typeof AdminServiceService, CallKind>;
  devices: Record<keyof typeof DeviceTrustServiceService, CallKind>;
  nodes: Record<keyof typeof NodeAccessServiceService, CallKind>;
  webSessions: Record<keyof typeof WebSessionServiceService, CallKind>;
};

export type CallKind = 'read' | 'write' | 'ceremony';
type Service = keyof typeof callKinds;

/** True for a read: sent again on another replica when its own stopped answering. */
export function retrySafe(service: string, method: string): boolean {
  const kinds = (callKinds as Record<string, Record<string, CallKind> | undefined>)[service];
  return kinds !== undefined && Object.hasOwn(kinds, method) && kinds[method] === 'read';
}

/**
 * How many addresses `address`'s host resolves to, as the channel resolves it (the system resolver): 1 for
 * an IP literal, and for a name the resolver cannot answer now (the call's own failure says why).
 */
export async function resolvedAddressCount(address: ClusterAddress): Promise<number> {
  if (isIP(address.host)) return 1;
  try {
    const found = await lookup(address.host, { all: true });
    return Math.max(1, new Set(found.map((entry) => entry.address)).size);
  } catch {
    return 1;
  }
}

/** Per cluster (its canonical address): the replica that answered last in this process. */
const answeredLast = new Map<string, string>();

function listed(trusted: TrustedCluster): string[] {
  return trusted.replicas?.length ? trusted.replicas : [trusted.address];
}

/** The replica the trusted cluster (as stored) says to try first. */
function storedFirst(trusted: TrustedCluster): string | undefined {
  const replicas = listed(trusted);
  return trusted.lastReplica && replicas.includes(trusted.lastReplica) ? trusted.lastReplica : replicas[0];
}

/**
 * The addresses to try for a trusted cluster: the replica that answered last first (this process's, else
 * the stored one), then the others in their stored order; its one address when it has no replicas.
 */
export function replicaAddresses(trusted: TrustedCluster): ClusterAddress[] {
  const replicas = listed(trusted);
  const first = [answeredLast.get(trusted.address), trusted.lastReplica].find(
    (address) => address !== undefined && replicas.includes(address),
  );
  const ordered = first ? [first, ...replicas.filter((address) => address !== first)] : replicas;
  return ordered.map(parseClusterAddress);
}

/** `trusted` naming `answered` as its replica to try first (unchanged when that is already so). */
export function withLastReplica(trusted: TrustedCluster, answered: ClusterAddress): TrustedCluster {
  const address = formatClusterAddress(answered);
  if (!trusted.replicas?.includes(address) || storedFirst(trusted) === address) return trusted;
  return { ...trusted, lastReplica: address };
}

/** Remembers the replica that answered: in this process always, with the trusted cluster when it changed. */
async function remember(trusted: TrustedCluster, answered: ClusterAddress, profiles?: ProfileStore) {
  answeredLast.set(trusted.address, formatClusterAddress(answered));
  if (!profiles || withLastReplica(trusted, answered) === trusted) return;
  // Read afresh, so that nothing written since (a login's) is lost; a failed write costs only the order.
  try {
    const current = await profiles.getTrustedCluster(parseClusterAddress(trusted.address));
    if (!current || current.caPin !== trusted.caPin) return;
    const updated = withLastReplica(current, answered);
    if (updated !== current) await profiles.trustCluster(updated);
  } catch {
    // The order is a preference: the call that answered is what matters.
  }
}

export interface ReplicaConnectOptions extends Pick<ConnectOptions, 'onCall'> {
  /** The session to connect as (its signer and certificate); without it, only AuthService calls work. */
  session?: SessionIdentity;
  /** Addresses (formatted) not to try again: replicas that already failed this ceremony. */
  skip?: ReadonlySet<string>;
  /** Where the replica that answered is stored with the trusted cluster when it changed (else in memory). */
  profiles?: ProfileStore;
}

/**
 * The API on the first replica of a trusted cluster that connects, in replicaAddresses order (TLS verified
 * against the pinned CA on each). One address: connectCluster on it, as connectTrusted does. Several: each
 * gets REPLICA_CONNECT_TIMEOUT_MS; a replica whose CA does not match the pin fails loudly, not over.
 */
export async function connectReplica(
  trusted: TrustedCluster,
  options: ReplicaConnectOptions = {},
): Promise<ClusterApi> {
  const connect = async (address: ClusterAddress): Promise<ClusterApi> => {
    const base = { address, caPem: trusted.caPem, caPin: trusted.caPin, onCall: options.onCall };
    return options.session ? connectSession({ ...base, ...options.session }) : connectCluster(base);
  };
  const addresses = replicaAddresses(trusted);
  if (addresses.length === 1) return connect(addresses[0] as ClusterAddress);
  const failures: string[] = [];
  for (const address of addresses) {
    if (options.skip?.has(formatClusterAddress(address))) continue;
    const api = await connect(address);
    try {
      await api.waitForConnection(REPLICA_CONNECT_TIMEOUT_MS);
    } catch (error) {
      api.close();
      if (!isTransportFailure(error)) throw error;
      failures.push(`${formatClusterAddress(address)} (${(error as Error).message})`);
      continue;
    }
    await remember(trusted, address, options.profiles);
    return api;
  }
  throw new KeyportError(
    'UNAVAILABLE',
    `No auth server of the cluster ${trusted.address} answered: ${failures.join('; ') || 'all of them failed'}.`,
  );
}

/**
 * connectReplica, whose reads (see callKinds) move to the next replica once when theirs fails in the
 * transport, saying `notice` (RETRYING_NOTICE) the first time. Later calls go to the replica moved to.
 * Writes and ceremony steps fail as they failed. One address moves only when its name resolves to several
 * (asked at the first transport failure, not before): to a new channel to that name.
 */
export async function connectRetryingReads(
  trusted: TrustedCluster,
  options: ReplicaConnectOptions & { notice?: (message: string) => void } = {},
): Promise<ClusterApi> {
  let current = await connectReplica(trusted, options);
  const addresses = replicaAddresses(trusted);
  let severalBehindName: Promise<boolean> | undefined;
  const mayMove = (): Promise<boolean> =>
    addresses.length > 1
      ? Promise.resolve(true)
      : (severalBehindName ??= resolvedAddressCount(addresses[0] as ClusterAddress).then((n) => n > 1));
  const failed = new Set<string>();
  let moving: Promise<ClusterApi> | undefined;
  let noticed = false;

  /** The replica after `from`: the one another call moved to already, or the next one that connects. */
  const moveFrom = (from: ClusterApi): Promise<ClusterApi> => {
    if (current !== from) return Promise.resolve(current);
    moving ??= (async () => {
      failed.add(formatClusterAddress(from.address));
      try {
        current = await connectReplica(trusted, { ...options, skip: failed });
        from.close();
        return current;
      } finally {
        moving = undefined;
      }
    })();
    return moving;
  };

  type Call = (request: unknown) => Promise<unknown>;
  const methodOf = (api: ClusterApi, service: Service, method: string) =>
    (api[service] as unknown as Record<string, Call | undefined>)[method];
  const service = <S extends Service>(name: S): ClusterApi[S] =>
    new Proxy({} as ClusterApi[S], {
      get(_target, method: string) {
        if (typeof methodOf(current, name, method) !== 'function') return undefined;
        return async (request: unknown) => {
          const on = current;
          try {
            return await (methodOf(on, name, method) as Call)(request);
          } catch (error) {
            if (!isTransportFailure(error) || !retrySafe(name, method) || !(await mayMove())) throw error;
            if (!noticed) options.notice?.(RETRYING_NOTICE);
            noticed = true;
            // No other replica answers: the call's own failure says what happened to it.
            const next = await moveFrom(on).catch(() => Promise.reject(error));
            return (methodOf(next, name, method) as Call)(request);
          }
        };
      },
    });

  return {
    auth: service('auth'),
    user: service('user'),
    admin: service('admin'),
    devices: service('devices'),
    nodes: service('nodes'),
    webSessions: service('webSessions'),
    get address() {
      return current.address;
    },
    // Writes are never sent again to another replica: the current one's, as they are.
    withAdminMfa: (response) => current.withAdminMfa(response),
    // The replica this api talks to now: a health check is about that one, never moved to another.
    health: (name) => current.health(name),
    waitForConnection: (timeoutMs) => current.waitForConnection(timeoutMs),
    close: () => current.close(),
  };
}
