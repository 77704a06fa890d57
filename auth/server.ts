// keyport-auth: one gRPC server over TLS. Client certificates are requested but optional at the TLS layer
// (signup and login happen before a client has one); every authenticated call verifies the certificate
// itself (identity.ts), so the TLS layer never decides who someone is.
import { addHealthService } from './health';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { ServerCredentials } from '@grpc/grpc-js';
import { Server, experimental } from '@grpc/grpc-js';
import type {
  CaCertificateUpdateListener,
  CertificateProvider,
  IdentityCertificateUpdateListener,
} from '@grpc/grpc-js/build/src/certificate-provider';
import { AdminServiceService } from '../proto/gen/keyport/v1/admin';
import { AuthServiceService } from '../proto/gen/keyport/v1/auth';
import { UserServiceService } from '../proto/gen/keyport/v1/user';
import { DeviceTrustServiceService } from '../proto/gen/keyport/v1/device';
import { NodeAccessServiceService, NodeServiceService } from '../proto/gen/keyport/v1/node';
import { WebSessionServiceService } from '../proto/gen/keyport/v1/web_session';
import { clockFromEnv, LAB_CLOCK_ENV } from '../proto/clock';
import { KeyportError } from '../proto/errors';
import { AuditLog } from './audit';
import { loadClusterAuthorities, loadOrCreateClusterAuthorities, withHostAuthority } from './authorities';
import { issueHostCertificate } from './ca/authority';
import type { Authorities } from './ca/authority';
import { issueClientCertificate } from './ca/x509';
import type { AuthConfig } from './config';
import type { ServiceContext } from './context';
import { BUILTIN_ADMIN } from './identity';
import { applyStartupResources } from './policy';
import { bindService, tolerantDefinition } from './rpc';
import { adminService } from './services/admin-service';
import { authService } from './services/auth-service';
import { userService } from './services/user-service';
import { deviceService } from './services/device-service';
import { nodeAccessService, nodeService } from './services/node-service';
import { webSessionService } from './services/web-session-service';
import { openKeyEncryptionKey, sealPlainTotpSeeds } from './secrets';
import { redactConnString } from './storage/postgres';
import { openStore } from './storage/store';
import { relyingParty } from './sso/relying-party';
import { startWebListener } from './web/server';
import type { RunningWebListener } from './web/server';

export const VERSION = '0.1.0';
export const ADMIN_IDENTITY_FILE = 'admin-identity.json';
const BUILTIN_ADMIN_VALIDITY_MS = 365 * 24 * 60 * 60 * 1000;
/** The largest request message accepted: a batch of resource documents for `keyport admin create -f`. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

export interface RunningAuthServer {
  address: string;
  port: number;
  caPin: string;
  clusterName: string;
  /** The web UI's origin (https://HOST:PORT), when it has a listener. */
  webOrigin?: string;
  stop(): Promise<void>;
}

/**
 * A certificate provider that serves fixed material; grpc-js needs one to request optional client
 * certificates. Updates are delivered on the next tick: grpc-js registers its watcher only after adding
 * the provider listeners, so a synchronous update would be lost and the server would serve no certificate.
 */
function staticProvider(caPem: string, chainPem: string, keyPem: string): CertificateProvider {
  return {
    addCaCertificateListener: (listener: CaCertificateUpdateListener) =>
      setImmediate(() => listener({ caCertificate: Buffer.from(caPem) })),
    removeCaCertificateListener: () => {},
    addIdentityCertificateListener: (listener: IdentityCertificateUpdateListener) =>
      setImmediate(() => listener({ certificate: Buffer.from(chainPem), privateKey: Buffer.from(keyPem) })),
    removeIdentityCertificateListener: () => {},
  };
}

async function writePrivateJson(path: string, value: unknown): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(value, null, 2), { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

/** Which replica wrote a super-admin identity: its host and data dir, which hold that identity's key. */
export function replicaName(dataDir: string): string {
  return `${hostname()}:${resolve(dataDir)}`;
}

/** A database unreachable at start: said as what it means for this process, not for a call. */
function notStarted(error: unknown): unknown {
  if (!(error instanceof KeyportError) || error.code !== 'UNAVAILABLE') return error;
  const cause = error.message.replace(/; the call was not completed, try again shortly\.$/, '');
  return new KeyportError(
    'UNAVAILABLE',
    `${cause}: keyport-auth did not start. Start it again once PostgreSQL answers (a supervisor that restarts it on failure does this).`,
  );
}

export async function startAuthServer(
  config: AuthConfig,
  log: (line: string) => void = () => {},
): Promise<RunningAuthServer> {
  const storage = config.storage;
  if (storage.type === 'postgresql') log(`storage: postgresql ${redactConnString(storage.connString)}`);
  const store = await openStore(
    { ...storage, ...(storage.type === 'postgresql' ? { log } : {}) },
    config.dataDir,
  ).catch((error: unknown) => {
    throw notStarted(error);
  });
  const storedName = await store.getConfig('cluster_name');
  if (storedName && JSON.parse(storedName) !== config.clusterName) {
    await store.close();
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `This ${storage.type === 'postgresql' ? 'database' : 'data dir'} belongs to cluster "${JSON.parse(storedName)}", not "${config.clusterName}".`,
    );
  }
  const now = clockFromEnv();
  if (process.env[LAB_CLOCK_ENV]) log(`lab clock: time is read from ${process.env[LAB_CLOCK_ENV]}`);
  // The key-encryption key, from outside the data dir: it seals the CA keys and the TOTP seeds. The CAs
  // already in the database must open with it before this start writes anything.
  const secrets = await openKeyEncryptionKey(config.kekFile);
  let oidcCaPem: string | undefined;
  const caOptions = { sealer: secrets, kekFile: config.kekFile };
  let authorities: Authorities | undefined;
  try {
    authorities = await loadClusterAuthorities(store, config.clusterName, caOptions);
    // The config's authentication section next: a start refused for it binds nothing to the cluster name
    // (no name, and no CAs named after it).
    await applyStartupResources(store, config.authentication, now(), config.configDir);
    // The first start on an empty database creates the CAs (or imports a data dir's CA files).
    authorities ??= await loadOrCreateClusterAuthorities(store, config.clusterName, {
      ...caOptions,
      dataDir: config.dataDir,
      now: now(),
      log,
    });
    authorities = await withHostAuthority(store, authorities, { ...caOptions, now: now() });
    await sealPlainTotpSeeds(store, secrets);
    if (config.oidcCaFile !== undefined) oidcCaPem = await readOidcCaFile(config.oidcCaFile);
  } catch (error) {
    await store.close();
    throw error;
  }
  const publicHost = config.publicAddr.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const webHosts = config.web ? [config.web.listen.host, config.web.publicAddr.replace(/:\d+$/, '')] : [];
  const names = new Set(['localhost', '127.0.0.1', '::1', publicHost, config.listen.host, ...webHosts]);
  names.delete('0.0.0.0');
  names.delete('::');
  const host = await issueHostCertificate(authorities, {
    dnsNames: [...names].filter((n) => isIP(n) === 0),
    ipAddresses: [...names].filter((n) => isIP(n) !== 0),
  });

  // Only a start that got this far (names valid, CAs ready) binds the data dir to the cluster name.
  if (!storedName) await store.putConfig('cluster_name', JSON.stringify(config.clusterName), now());

  const server = new Server({
    // Requests are small (the largest field is a 256 KiB resource document); more is refused with
    // RESOURCE_EXHAUSTED before it is read.
    'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
  });
  const builtinKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const builtin = await issueClientCertificate({
    authorities,
    publicKeyPem: builtinKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    user: BUILTIN_ADMIN,
    roles: ['editor'],
    logins: [],
    mfaVerified: false,
    notBefore: new Date(now() - 60_000),
    notAfter: new Date(now() + BUILTIN_ADMIN_VALIDITY_MS),
    extra: { builtin: 'true' },
  });

  const ctx: ServiceContext = {
    store,
    audit: new AuditLog(store, now),
    authorities,
    clusterName: config.clusterName,
    publicAddr: config.publicAddr,
    caPin: authorities.tls.pin,
    version: VERSION,
    lockout: config.lockout,
    rateLimit: config.rateLimit,
    secrets,
    now,
    builtinAdminSerial: builtin.serial.toString(16),
    sso: relyingParty({ extraCaPem: oidcCaPem, now }),
  };
  // Every replica accepts the super-admin identity any replica wrote at its last start; a replica's
  // previous one stops working when it starts again (one current serial per replica).
  await store.putBuiltinAdmin(
    replicaName(config.dataDir),
    ctx.builtinAdminSerial,
    now(),
    now() + BUILTIN_ADMIN_VALIDITY_MS,
  );
  const logError = (error: unknown) => log(`error: ${error instanceof Error ? error.stack : String(error)}`);
  server.addService(
    tolerantDefinition(AuthServiceService),
    bindService(AuthServiceService, authService(ctx), logError),
  );
  server.addService(
    tolerantDefinition(UserServiceService),
    bindService(UserServiceService, userService(ctx), logError),
  );
  server.addService(
    tolerantDefinition(AdminServiceService),
    bindService(AdminServiceService, adminService(ctx), logError),
  );
  server.addService(
    tolerantDefinition(DeviceTrustServiceService),
    bindService(DeviceTrustServiceService, deviceService(ctx), logError),
  );
  server.addService(
    tolerantDefinition(NodeAccessServiceService),
    bindService(NodeAccessServiceService, nodeAccessService(ctx), logError),
  );
  server.addService(
    tolerantDefinition(NodeServiceService),
    bindService(NodeServiceService, nodeService(ctx), logError),
  );
  server.addService(
    tolerantDefinition(WebSessionServiceService),
    bindService(WebSessionServiceService, webSessionService(ctx), logError),
  );
  const health = addHealthService(
    server,
    [
      AuthServiceService,
      UserServiceService,
      AdminServiceService,
      DeviceTrustServiceService,
      NodeAccessServiceService,
      NodeServiceService,
      WebSessionServiceService,
    ].map(serviceNameOf),
  );

  const provider = staticProvider(authorities.tls.certPem, host.chainPem, host.keyPem);
  const credentials: ServerCredentials = experimental.createCertificateProviderServerCredentials(
    provider,
    provider,
    false,
  );
  const bindHost = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${bindHost}:${config.listen.port}`, credentials, (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
  if (ctx.publicAddr.endsWith(':0')) ctx.publicAddr = ctx.publicAddr.replace(/:0$/, `:${port}`);
  const dialHost = ['0.0.0.0', '::'].includes(config.listen.host) ? '127.0.0.1' : bindHost;
  const address = `${dialHost}:${port}`;
  // On PostgreSQL the data dir holds only this identity: made here, owner-only, on a replica's first start.
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await writePrivateJson(join(config.dataDir, ADMIN_IDENTITY_FILE), {
    cluster: config.clusterName,
    address,
    caCertPem: authorities.tls.certPem,
    keyPem: builtinKey.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: builtin.certPem,
  });

  // The web UI: its own HTTPS listener with the same host certificate, over the same services.
  let web: RunningWebListener | undefined;
  if (config.web) {
    try {
      web = await startWebListener(ctx, {
        ...config.web.listen,
        publicAddr: config.web.publicAddr,
        tls: { keyPem: host.keyPem, chainPem: host.chainPem },
        log,
      });
      ctx.webOrigin = web.origin;
    } catch (error) {
      server.forceShutdown();
      await store.close();
      throw error;
    }
  }

  const pruneTimer = setInterval(() => {
    store.prune(now(), config.lockout.windowMs).catch(logError);
  }, 60_000);
  pruneTimer.unref();

  let stopping: Promise<void> | undefined;
  return {
    address,
    port,
    caPin: authorities.tls.pin,
    clusterName: config.clusterName,
    ...(web ? { webOrigin: web.origin } : {}),
    stop() {
      stopping ??= (async () => {
        clearInterval(pruneTimer);
        health.stopping();
        await web?.close();
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 2000);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        await store.close();
      })();
      return stopping;
    },
  };
}

/** `keyport.v1.AuthService` from a generated service definition (its methods' paths name it). */
function serviceNameOf(definition: Record<string, { path: string }>): string {
  const [first] = Object.values(definition);
  const name = first?.path.split('/')[1];
  if (!name) throw new TypeError('A service definition without methods.');
  return name;
}

/** The CA bundle SSO connectors' IdPs may be trusted by (`auth_service.oidc_ca_file`), read at start. */
async function readOidcCaFile(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch((error: unknown) => {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `auth_service.oidc_ca_file: cannot read ${path}: ${(error as Error).message}`,
      { fieldPath: 'auth_service.oidc_ca_file' },
    );
  });
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `auth_service.oidc_ca_file: ${path} holds no PEM certificate.`,
      { fieldPath: 'auth_service.oidc_ca_file' },
    );
  }
  return text;
}
