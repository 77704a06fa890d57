// The gRPC client of keyport/v1: TLS verified against the pinned cluster CA only, promise-returning
// methods and KeyportError failures. Authenticated calls prove the session key one of two ways: a TLS
// client certificate (mTLS: a software key, the default), or a per-call proof of possession
// (proto/pop.ts: the certificate and a signature by the session key ride in each call's metadata, and no
// client certificate is sent), which a key that cannot leave its signer (a PIV card) needs.
import { createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { connectivityState, credentials, Metadata } from '@grpc/grpc-js';
import type { CallOptions, Client, ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { ADMIN_MFA_METADATA_KEY, adminActionOf } from '../proto/admin-mfa';
import { now } from '../proto/clock';
import { ERROR_METADATA_KEY, fromServiceError, KeyportError } from '../proto/errors';
import { AdminServiceClient, AdminServiceService } from '../proto/gen/keyport/v1/admin';
import { AuthServiceClient, AuthServiceService } from '../proto/gen/keyport/v1/auth';
import { MFAAuthenticateResponse } from '../proto/gen/keyport/v1/mfa';
import { UserServiceClient, UserServiceService } from '../proto/gen/keyport/v1/user';
import type { AdminAction } from '../proto/gen/keyport/v1/user';
import { DeviceTrustServiceClient, DeviceTrustServiceService } from '../proto/gen/keyport/v1/device';
import { WebSessionServiceClient, WebSessionServiceService } from '../proto/gen/keyport/v1/web_session';
import { NodeAccessServiceClient, NodeAccessServiceService } from '../proto/gen/keyport/v1/node';
import { digestOf, encodeProof, POP_CERTIFICATE_METADATA_KEY, POP_METADATA_KEY } from '../proto/pop';
import { fetchPresentedChain, formatClusterAddress, pinMismatchError } from './cluster-trust';
import type { ClusterAddress } from './cluster-trust';
import type { HealthCheck, ServingStatus } from './health-client';
import { tlsClientKeyPem } from './keystore/signer';
import type { SessionSigner } from './keystore/signer';

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

export type Promisified<C> = {
  [K in keyof C as C[K] extends UnaryMethod<never, unknown> ? K : never]: C[K] extends UnaryMethod<
    infer Req,
    infer Res
  >
    ? (request: Req) => Promise<Res>
    : never;
};

interface ConnectBase {
  address: ClusterAddress;
  caPem: string;
  caPin: string;
  deadlineMs?: number;
  /** Counts calls, so tests and benchmarks can assert the number of round trips. */
  onCall?: (method: string) => void;
}

/**
 * mTLS with a key in hand as PEM: an identity kept as files (the super-admin identity of an auth host).
 * A session key goes as a signer instead. Without either, only AuthService calls work.
 */
export interface PemIdentity {
  clientKeyPem?: string;
  clientCertPem?: string;
  signer?: never;
  certificatePem?: never;
  proofOfPossession?: never;
}

/** A session: its key's signer, and the certificate issued for that key at login. */
export interface SessionIdentity {
  signer: SessionSigner;
  certificatePem: string;
  /**
   * Every call carries the certificate and a proof signed by the session key (proto/pop.ts), and no TLS
   * client certificate is sent. Implied when the key cannot leave its signer (`!signer.exportable`);
   * otherwise mTLS (connectSession reads the key for the TLS layer).
   */
  proofOfPossession?: boolean;
  clientKeyPem?: never;
  clientCertPem?: never;
}

export type ConnectOptions = ConnectBase & (PemIdentity | SessionIdentity);

export interface ClusterApi {
  auth: Promisified<AuthServiceClient>;
  user: Promisified<UserServiceClient>;
  admin: Promisified<AdminServiceClient>;
  devices: Promisified<DeviceTrustServiceClient>;
  nodes: Promisified<NodeAccessServiceClient>;
  /**
   * The standard gRPC health check on this channel (grpc.health.v1.Health/Check): SERVING, NOT_SERVING or
   * SERVICE_UNKNOWN for `service` ('' = the replica as a whole). Needs no certificate; the server reads no
   * storage for it.
   */
  health(service?: string): Promise<ServingStatus>;
  /** The web-session approval ceremony (Keyport Connect verifying a browser). */
  webSessions: Promisified<WebSessionServiceClient>;
  /** The replica this channel talks to. */
  address: ClusterAddress;
  /**
   * The admin services on the same channel, every call carrying `response` (an answered ADMIN_ACTION
   * challenge naming those calls: client/ceremonies/admin-action.ts).
   */
  withAdminMfa(response: MFAAuthenticateResponse): AdminMfaApi;
  /**
   * Connects now, and settles once the channel is up (TLS against the pinned CA done), or fails with a
   * transport UNAVAILABLE as soon as the connection fails or `timeoutMs` passes. A CA that no longer
   * matches the pin is said loudly (CA_PIN_MISMATCH), never taken for an unreachable replica.
   */
  waitForConnection(timeoutMs: number): Promise<void>;
  close(): void;
}

/**
 * The services whose writes may be admin actions (every one but AuthService's sign-in, UserService's own
 * account calls and the person's own web-session approvals), as ClusterApi.withAdminMfa gives them: a new
 * service lands here by default.
 */
export type AdminServiceName = Exclude<ServiceName, 'auth' | 'user' | 'webSessions'>;
export type AdminMfaApi = Pick<ClusterApi, AdminServiceName>;

/**
 * An admin write as an ADMIN_ACTION challenge names it: the method's path and the digest of the request's
 * bytes, serialized as the call will send them (proto/admin-mfa.ts).
 */
export function adminActionFor<S extends AdminServiceName, M extends keyof AdminMfaApi[S] & string>(
  service: S,
  method: M,
  request: AdminMfaApi[S][M] extends (request: infer Req) => Promise<unknown> ? Req : never,
): AdminAction {
  const definition = methodDefinition(service, method);
  if (!definition) throw new TypeError(`No service definition for ${service}.${method}.`);
  return adminActionOf(definition.path, definition.requestSerialize(request));
}

const transportFailures = new WeakSet<object>();

/**
 * True for an UNAVAILABLE the transport made (connection refused or reset, no connection by the deadline),
 * not one the auth service sent (a database it cannot reach): only that one says another replica may do.
 */
export function isTransportFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && transportFailures.has(error);
}

function transportFailure(failure: KeyportError): KeyportError {
  transportFailures.add(failure);
  return failure;
}

/** True when a session's calls carry a proof of possession rather than a TLS client certificate. */
export function usesProofOfPossession(identity: PemIdentity | SessionIdentity): boolean {
  return !!identity.signer && (identity.proofOfPossession === true || !identity.signer.exportable);
}

/**
 * The API as a session. With proof of possession, connectCluster as it is. With mTLS (a software key and
 * no proofOfPossession), the key goes to grpc-js's TLS layer, and nowhere else: this is the one caller of
 * tlsClientKeyPem. Rejects as the keystore does (KEY_NOT_FOUND, KEYCHAIN_LOCKED) before connecting.
 */
export async function connectSession(options: ConnectBase & SessionIdentity): Promise<ClusterApi> {
  if (usesProofOfPossession(options)) return connectCluster(options);
  const { signer, certificatePem, proofOfPossession: _mtls, ...base } = options;
  return connectCluster({
    ...base,
    clientKeyPem: await tlsClientKeyPem(signer),
    clientCertPem: certificatePem,
  });
}

/** The generated service definitions, by the ClusterApi's names: each method's path and serializers. */
const serviceDefinitions = {
  auth: AuthServiceService,
  user: UserServiceService,
  admin: AdminServiceService,
  devices: DeviceTrustServiceService,
  nodes: NodeAccessServiceService,
  webSessions: WebSessionServiceService,
} as const;
type ServiceName = keyof typeof serviceDefinitions;

interface MethodDefinition {
  path: string;
  requestSerialize(value: unknown): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

function methodDefinition(service: ServiceName, method: string): MethodDefinition | undefined {
  const definitions = serviceDefinitions[service] as unknown as Record<string, MethodDefinition>;
  return Object.hasOwn(definitions, method) ? definitions[method] : undefined;
}

/** Each call's proof of possession, for one session (its signer, and the certificate that names its key). */
function proofMaker(signer: SessionSigner, certificatePem: string) {
  const certificate = new X509Certificate(certificatePem);
  if (!certificate.publicKey.equals(createPublicKey(signer.publicKeyPem))) {
    throw new KeyportError('UNAUTHENTICATED', "The session's certificate is not for its key: log in again.", {
      resolvableByRelogin: true,
    });
  }
  const certificateDer = certificate.raw;
  const certificateDigest = digestOf(certificateDer);
  const sign = (data: Buffer) => signer.sign(data);
  /** The metadata for a call of `path` whose request is `requestBytes` (as sent). */
  return async (path: string, requestBytes: Buffer): Promise<Metadata> => {
    const proof = await encodeProof(
      {
        m: path,
        h: digestOf(requestBytes),
        t: now(),
        n: randomBytes(16).toString('base64url'),
        c: certificateDigest,
      },
      sign,
    );
    const metadata = new Metadata();
    metadata.set(POP_CERTIFICATE_METADATA_KEY, certificateDer);
    metadata.set(POP_METADATA_KEY, proof);
    return metadata;
  };
}

/** The request, already serialized: grpc-js sends these bytes as they are (the proof hashed them). */
const asSerialized = (bytes: Buffer) => bytes;

/**
 * The API on one replica, synchronously. A session connects with proof of possession here; a session over
 * mTLS goes through connectSession, which reads the key first (a signer that would need mTLS is refused).
 */
export function connectCluster(options: ConnectOptions): ClusterApi {
  const target = formatClusterAddress(options.address);
  let proofFor: ReturnType<typeof proofMaker> | undefined;
  if (options.signer) {
    if (!usesProofOfPossession(options)) {
      throw new TypeError('A session over mTLS connects through connectSession, which reads its key first.');
    }
    proofFor = proofMaker(options.signer, options.certificatePem);
  }
  const channelCredentials = credentials.createSsl(
    Buffer.from(options.caPem),
    options.clientKeyPem ? Buffer.from(options.clientKeyPem) : null,
    options.clientCertPem ? Buffer.from(options.clientCertPem) : null,
  );
  const channelOptions = { 'grpc.max_receive_message_length': 16 * 1024 * 1024 };
  const auth = new AuthServiceClient(target, channelCredentials, channelOptions);
  // One channel for all four services: the others reuse the first client's channel.
  const shared = { channelOverride: auth.getChannel() };
  const user = new UserServiceClient(target, channelCredentials, shared);
  const admin = new AdminServiceClient(target, channelCredentials, shared);
  const devices = new DeviceTrustServiceClient(target, channelCredentials, shared);
  const nodes = new NodeAccessServiceClient(target, channelCredentials, shared);
  let health: Promise<HealthCheck> | undefined;
  const webSessions = new WebSessionServiceClient(target, channelCredentials, shared);

  /** A transport failure may be a changed CA: look at what the cluster presents and say so loudly. */
  async function explain(error: ServiceError): Promise<KeyportError> {
    const failure = fromServiceError(error);
    if (failure.code !== 'UNAVAILABLE') return failure;
    // The service's own UNAVAILABLE carries its error detail; the transport's carries none.
    if (error.metadata?.get(ERROR_METADATA_KEY).length) return failure;
    return probe(transportFailure(failure));
  }

  async function probe(failure: KeyportError, timeoutMs?: number): Promise<KeyportError> {
    const presented = await fetchPresentedChain(options.address, timeoutMs).catch(
      (probeError: unknown) => probeError,
    );
    if (presented instanceof KeyportError) return presented.code === 'UNAVAILABLE' ? failure : presented;
    if (
      presented &&
      typeof presented === 'object' &&
      'caPin' in presented &&
      presented.caPin !== options.caPin
    ) {
      return pinMismatchError(options.address, options.caPin, String(presented.caPin));
    }
    return failure;
  }

  /** `adminMfa`: the serialized answer every call of this view carries (MFA for admin actions). */
  function promisify<C extends Client>(client: C, service: ServiceName, adminMfa?: Buffer): Promisified<C> {
    const withAdminMfa = (metadata: Metadata) => {
      if (adminMfa) metadata.set(ADMIN_MFA_METADATA_KEY, adminMfa);
      return metadata;
    };
    return new Proxy({} as Promisified<C>, {
      get(_target, method: string) {
        const fn = (client as unknown as Record<string, UnaryMethod<unknown, unknown>>)[method];
        if (typeof fn !== 'function') return undefined;
        // AuthService's calls (cluster info, signup, login) authenticate nobody: never signed, so a card
        // is not asked for a touch or a PIN for them.
        const signed = service === 'auth' ? undefined : proofFor;
        const definition = signed ? methodDefinition(service, method) : undefined;
        return (request: unknown) =>
          new Promise((resolve, reject) => {
            options.onCall?.(`${service}.${method}`);
            // The deadline starts once the call is ready to go: a card's touch or PIN is not counted in it.
            const deadline = () => new Date(Date.now() + (options.deadlineMs ?? 15_000));
            const done = (error: ServiceError | null, response: unknown) => {
              if (error) explain(error).then(reject, reject);
              else resolve(response);
            };
            if (!signed) {
              fn.call(client, request, withAdminMfa(new Metadata()), { deadline: deadline() }, done);
              return;
            }
            if (!definition) {
              reject(new TypeError(`No service definition for ${service}.${method}: it cannot be signed.`));
              return;
            }
            // Serialized once: the proof hashes the very bytes that are sent.
            const bytes = definition.requestSerialize(request);
            signed(definition.path, bytes).then((metadata) => {
              client.makeUnaryRequest(
                definition.path,
                asSerialized,
                definition.responseDeserialize,
                bytes,
                withAdminMfa(metadata),
                { deadline: deadline() },
                done,
              );
            }, reject);
          });
      },
    });
  }

  return {
    auth: promisify(auth, 'auth'),
    user: promisify(user, 'user'),
    admin: promisify(admin, 'admin'),
    devices: promisify(devices, 'devices'),
    nodes: promisify(nodes, 'nodes'),
    webSessions: promisify(webSessions, 'webSessions'),
    address: options.address,
    async health(service = '') {
      health ??= import('./health-client').then((module) =>
        module.healthClient(target, channelCredentials, auth.getChannel()),
      );
      try {
        return await (await health).check(service, new Date(Date.now() + (options.deadlineMs ?? 15_000)));
      } catch (error) {
        throw await explain(error as ServiceError);
      }
    },
    withAdminMfa(response: MFAAuthenticateResponse): AdminMfaApi {
      const bytes = Buffer.from(MFAAuthenticateResponse.encode(response).finish());
      // A service added to ClusterApi does not compile here until it carries the answer too.
      const services: AdminMfaApi = {
        admin: promisify(admin, 'admin', bytes),
        devices: promisify(devices, 'devices', bytes),
        nodes: promisify(nodes, 'nodes', bytes),
      };
      return services;
    },
    waitForConnection(timeoutMs: number) {
      const channel = auth.getChannel();
      const deadline = Date.now() + timeoutMs;
      const unreachable = (why: string) =>
        probe(
          transportFailure(new KeyportError('UNAVAILABLE', `Cannot reach ${target}: ${why}.`)),
          timeoutMs,
        );
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          const state = channel.getConnectivityState(true);
          if (state === connectivityState.READY) return resolve();
          if (state === connectivityState.TRANSIENT_FAILURE || state === connectivityState.SHUTDOWN) {
            return void unreachable('the connection failed').then(reject, reject);
          }
          channel.watchConnectivityState(state, deadline, (error) => {
            if (error) void unreachable(`no connection within ${timeoutMs} ms`).then(reject, reject);
            else check();
          });
        };
        check();
      });
    },
    close() {
      void health?.then((client) => client.close());
      webSessions.close();
      nodes.close();
      devices.close();
      admin.close();
      user.close();
      auth.close();
    },
  };
}
