// The client's per-call proof of possession against a real keyport-auth (issue 10, "Calls to keyport-auth"):
// a session logged in with the default keystore (the lab's gnome-keyring) calls with proofOfPossession and
// no TLS client certificate; the service authenticates those calls by the proof alone (a broken or missing
// proof is refused, which mTLS would have let through), refuses a replayed one, and KEYPORT_HOME holds no
// private key.
import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromServiceError } from '../proto/errors';
import { UserServiceClient } from '../proto/gen/keyport/v1/user';
import type { PingResponse } from '../proto/gen/keyport/v1/user';
import { POP_CERTIFICATE_METADATA_KEY, POP_METADATA_KEY } from '../proto/pop';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import type { Profile, TrustedCluster } from '../client/profiles';
import { connectAsProfile, profileSigner } from '../client/session';
import type { SessionSigner } from '../client/keystore';
import { loginUser, signUpUser, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { startLabKeyring } from '../lab/keyring';
import type { LabKeyring } from '../lab/keyring';

let cluster: LabCluster;
let keyring: LabKeyring;
let work: string;
let home: string;
let nell: SignedUpUser;
let profiles: ProfileStore;
let profile: Profile;
let trusted: TrustedCluster;
const savedBusAddress = process.env.DBUS_SESSION_BUS_ADDRESS;

beforeAll(async () => {
  await Promise.all([
    startLabCluster({ clusterName: 'pop-client' }).then((started) => (cluster = started)),
    startLabKeyring().then((started) => (keyring = started)),
    mkdtemp(join(tmpdir(), 'keyport-pop-client-')).then((dir) => (work = dir)),
  ]);
  // This process reads the session key from the same keychain the CLI wrote it to (@napi-rs/keyring
  // reads only the bus address, at its first use in a process).
  process.env.DBUS_SESSION_BUS_ADDRESS = keyring.env.DBUS_SESSION_BUS_ADDRESS;
  home = join(work, 'nell');
  nell = await signUpUser(cluster, home, 'nell', ['editor']);
  const login = await loginUser(cluster, home, nell, [], { ...keyring.env });
  if (login.code !== 0) throw new Error(`login failed: ${login.stderr}`);
  profiles = new ProfileStore(home);
  profile = (await profiles.getProfile()) as Profile;
  trusted = (await profiles.getTrustedCluster(parseClusterAddress(profile.address))) as TrustedCluster;
}, 180_000);

afterAll(async () => {
  if (savedBusAddress === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
  else process.env.DBUS_SESSION_BUS_ADDRESS = savedBusAddress;
  await Promise.all([cluster?.stop(), keyring?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** The session as proof of possession, with `signer` in place of the profile's own. */
function connectWithProof(signer: SessionSigner): ClusterApi {
  return connectCluster({
    address: parseClusterAddress(trusted.address),
    caPem: trusted.caPem,
    caPin: trusted.caPin,
    signer,
    certificatePem: profile.tlsCertPem,
    proofOfPossession: true,
  });
}

/** A ping on a channel with no client certificate, carrying exactly `metadata`. */
function rawPing(metadata: Metadata): Promise<PingResponse> {
  const client = new UserServiceClient(trusted.address, credentials.createSsl(Buffer.from(trusted.caPem)));
  return new Promise<PingResponse>((resolve, reject) =>
    client.ping({}, metadata, { deadline: Date.now() + 10_000 }, (error: ServiceError | null, response) =>
      error ? reject(fromServiceError(error)) : resolve(response),
    ),
  ).finally(() => client.close());
}

function certificateMetadata(): Metadata {
  const metadata = new Metadata();
  metadata.set(POP_CERTIFICATE_METADATA_KEY, new X509Certificate(profile.tlsCertPem).raw);
  return metadata;
}

describe('calls with proof of possession, on a real keyport-auth', () => {
  it('succeed with no TLS client certificate, for a session whose key is in the OS keychain', async () => {
    expect(profile.keystore).toBe('keychain');
    const calls: string[] = [];
    const api = await connectAsProfile(profiles, profile, (method) => calls.push(method), {
      proofOfPossession: true,
    });
    try {
      const status = await api.user.getStatus({});
      expect(status).toMatchObject({ user: 'nell', roles: ['editor'], clusterName: 'pop-client' });
      expect((await api.user.ping({})).serverTimeMs).toBeGreaterThan(0);
      expect((await api.user.listMfaDevices({})).devices.map((device) => device.name)).toEqual(['otp']);
      // Two calls alike, each with its own proof (a nonce used once).
      await api.user.getStatus({});
      expect(calls).toEqual(['user.getStatus', 'user.ping', 'user.listMfaDevices', 'user.getStatus']);
    } finally {
      api.close();
    }
  });

  it('are refused when the proof is broken or stripped: the service saw no client certificate', async () => {
    const signer = profileSigner(profiles, profile);
    // The session's own key, signing other bytes than the proof's: through the very same client path.
    const wrongBytes: SessionSigner = {
      ...signer,
      sign: (data) => signer.sign(Buffer.concat([data, Buffer.from('!')])),
    };
    const broken = connectWithProof(wrongBytes);
    try {
      await expect(broken.user.getStatus({})).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
        message: expect.stringContaining("not signed by the certificate's key"),
      });
    } finally {
      broken.close();
    }
    // The certificate with no proof at all.
    await expect(rawPing(certificateMetadata())).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: expect.stringContaining('carries no proof'),
    });
  });

  it('refuse a proof sent a second time', async () => {
    const signer = profileSigner(profiles, profile);
    const proofs: string[] = [];
    // Rebuilds each proof from what was signed (proto/pop.ts: `keyport-pop-v1.<claims>` → `v1.<claims>.<sig>`).
    const recording: SessionSigner = {
      ...signer,
      async sign(data) {
        const signature = await signer.sign(data);
        const claims = data.toString('ascii').slice('keyport-pop-v1.'.length);
        proofs.push(`v1.${claims}.${signature.toString('base64url')}`);
        return signature;
      },
    };
    const api = connectWithProof(recording);
    try {
      await api.user.ping({});
    } finally {
      api.close();
    }
    expect(proofs).toHaveLength(1);
    const replay = certificateMetadata();
    replay.set(POP_METADATA_KEY, proofs[0] as string);
    await expect(rawPing(replay)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: expect.stringContaining('already used'),
    });
  });

  it('leave no private key anywhere in KEYPORT_HOME', () => {
    const lookup = spawnSync('secret-tool', ['lookup', 'service', 'keyport', 'username', profile.keyId], {
      env: { PATH: process.env.PATH, ...keyring.env },
      encoding: 'utf8',
    });
    expect(lookup.status, lookup.stderr).toBe(0);
    const key = createPrivateKey(lookup.stdout);
    const der = key.export({ format: 'der', type: 'pkcs8' });
    const scalar = Buffer.from(key.export({ format: 'jwk' }).d as string, 'base64url');
    const bodyLines = lookup.stdout.split('\n').filter((line) => line && !line.startsWith('-----'));
    expect(bodyLines.length).toBeGreaterThan(0);

    expect(existsSync(join(home, 'keys'))).toBe(false);
    const files = readdirSync(home, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const content = readFileSync(file);
      expect(content.includes('PRIVATE KEY'), `${file} holds a PEM private key`).toBe(false);
      expect(content.includes(der), `${file} holds the PKCS#8 key`).toBe(false);
      expect(content.includes(scalar), `${file} holds the private scalar`).toBe(false);
      for (const encoded of [der.toString('base64'), scalar.toString('base64url'), scalar.toString('hex')]) {
        expect(content.includes(encoded), `${file} holds the key encoded`).toBe(false);
      }
      for (const line of bodyLines) expect(content.includes(line), `${file} holds the PEM body`).toBe(false);
    }
  });
});
