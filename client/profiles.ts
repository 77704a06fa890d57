// Profiles under KEYPORT_HOME (default ~/.keyport), shared by the CLI and the desktop app:
//   clusters/<host_port>.json   trusted CA (pin + PEM), kept across logouts
//   profiles/<host_port>.json   the signed-in session: user, certificates, where the private key is
//   profiles/<host_port>-cert.pub   the OpenSSH certificate, for ssh and ssh-keygen
//   current                     the address of the current profile
// Every write is a temp file + rename, so a reader never sees half a file and concurrent writers never
// interleave. Nothing here is secret: private keys live in the keychain (or the explicit file keystore), or
// on a PIV card.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile, readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KeyportError } from '../proto/errors';
import { formatClusterAddress } from './cluster-trust';
import type { ClusterAddress } from './cluster-trust';
import type { KeyStoreKind } from './keystore';

export interface TrustedCluster {
  /** The canonical address (the first one given): the file names of this record and of the profile. */
  address: string;
  /**
   * Several keyport-auth replicas of the cluster (one database, one CA): every address, the canonical one
   * first, tried in order. Absent for a cluster given with one address.
   */
  replicas?: string[];
  /** The replica that answered last (one of `replicas`), tried first; absent: the first of `replicas`. */
  lastReplica?: string;
  name: string;
  /** The cluster's public address, whose host is the WebAuthn origin (https://host[:port]). */
  publicAddr?: string;
  /** `passwordless` makes passwordless login the default (cluster_auth_preference.connector_name). */
  connectorName?: string;
  /** cluster_auth_preference.second_factors when trusted ("otp", "webauthn"); refreshed on each trust. */
  secondFactors?: string[];
  allowPasswordless?: boolean;
  caPin: string;
  caPem: string;
  trustedAtMs: number;
  /** Who signed in here last (not a secret): the login form offers it after a sign-out. */
  lastUser?: string;
  /**
   * device_trust as the cluster last said it (at trust, then at each login): whether to offer this
   * machine's TPM at login, and to auto-enroll it.
   */
  deviceTrust?: { mode: string; autoEnroll: boolean };
  /** The credential the cluster last recognised as this device's (not a secret: a hash of the AK's public area). */
  deviceCredentialId?: string;
  /**
   * The private-key policy the cluster asked of this user's last session ("hardware_key_touch", ...): a
   * login that meets it again on the card says nothing about a relogin.
   */
  privateKeyPolicy?: string;
}

/** A session key on a PIV card: where it is (slot, card) and what it is (its policies). Nothing secret. */
export interface HardwareKeyRecord {
  /** The PIV slot, "9a", "9c", "9d" or "9e". */
  slot: string;
  /** The card's serial (YubiKey GET SERIAL), when it has one. */
  serial?: number;
  /** The private-key policy the key meets ("hardware_key_touch", ...). */
  policy: string;
  pinPolicy: 'default' | 'never' | 'once' | 'always';
  touchPolicy: 'default' | 'never' | 'always' | 'cached';
}

export interface Profile {
  address: string;
  cluster: string;
  user: string;
  roles: string[];
  logins: string[];
  mfaVerified: boolean;
  validAfterMs: number;
  expiresMs: number;
  /**
   * Where a software session key lives. A profile with `hardwareKey` has its key on the card instead:
   * nothing of it is in this keystore (which stays the keystore the login was asked to use).
   */
  keystore: KeyStoreKind;
  keyId: string;
  /** The session key is on a PIV card (hardware-key policies): its calls carry a proof of possession. */
  hardwareKey?: HardwareKeyRecord;
  tlsCertPem: string;
  sshCertificate: string;
  /** The trusted device this session's certificates carry (their keyport-device-* extensions). */
  device?: { deviceId: string; assetTag: string; credentialId: string };
  /**
   * The oidc connector this session signed in through (`keyport login --auth=NAME`, "Sign in with
   * DISPLAY"): a relogin runs that SSO login again. Absent (every profile saved before it existed): a local
   * login, with a password or passwordless.
   */
  ssoConnector?: string;
}

export function keyportHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.KEYPORT_HOME || join(homedir(), '.keyport');
}

function fileKey(address: string): string {
  return address.replace(/[^A-Za-z0-9.-]/g, '_');
}

async function writeAtomically(path: string, contents: string, mode = 0o600): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, contents, { mode });
  await rename(temporary, path);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new KeyportError('INVALID_ARGUMENT', `${path} is not valid JSON; remove it and sign in again.`);
  }
}

export class ProfileStore {
  constructor(readonly home: string = keyportHome()) {}

  private async dir(name: string): Promise<string> {
    const path = join(this.home, name);
    await mkdir(path, { recursive: true, mode: 0o700 });
    return path;
  }

  async getTrustedCluster(address: ClusterAddress): Promise<TrustedCluster | undefined> {
    return readJson<TrustedCluster>(
      join(this.home, 'clusters', `${fileKey(formatClusterAddress(address))}.json`),
    );
  }

  async trustCluster(cluster: TrustedCluster): Promise<void> {
    const dir = await this.dir('clusters');
    await writeAtomically(join(dir, `${fileKey(cluster.address)}.json`), JSON.stringify(cluster, null, 2));
  }

  async forgetCluster(address: string): Promise<void> {
    await rm(join(this.home, 'clusters', `${fileKey(address)}.json`), { force: true });
  }

  async listTrustedClusters(): Promise<TrustedCluster[]> {
    const dir = join(this.home, 'clusters');
    const names = await readdir(dir).catch(() => [] as string[]);
    const clusters = await Promise.all(
      names.filter((n) => n.endsWith('.json')).map((n) => readJson<TrustedCluster>(join(dir, n))),
    );
    return clusters.filter((c): c is TrustedCluster => c !== undefined);
  }

  sshCertificatePath(address: string): string {
    return join(this.home, 'profiles', `${fileKey(address)}-cert.pub`);
  }

  async saveProfile(profile: Profile): Promise<void> {
    const dir = await this.dir('profiles');
    // The certificate and the profile side by side; `current` names the profile once both are in place.
    await Promise.all([
      writeAtomically(this.sshCertificatePath(profile.address), `${profile.sshCertificate}\n`, 0o644),
      writeAtomically(join(dir, `${fileKey(profile.address)}.json`), JSON.stringify(profile, null, 2)),
    ]);
    await writeAtomically(join(this.home, 'current'), `${profile.address}\n`);
  }

  async getProfile(address?: string): Promise<Profile | undefined> {
    const chosen = address ?? (await this.currentAddress());
    if (!chosen) return undefined;
    return readJson<Profile>(join(this.home, 'profiles', `${fileKey(chosen)}.json`));
  }

  /** Every saved profile (one per cluster signed in to). */
  async listProfiles(): Promise<Profile[]> {
    const dir = join(this.home, 'profiles');
    const names = await readdir(dir).catch(() => [] as string[]);
    const found = await Promise.all(
      names
        .filter((n) => n.endsWith('.json'))
        .map((n) => readJson<Profile>(join(dir, n)).catch(() => undefined)),
    );
    return found.filter((p): p is Profile => p !== undefined);
  }

  async currentAddress(): Promise<string | undefined> {
    const text = await readFile(join(this.home, 'current'), 'utf8').catch(() => undefined);
    return text?.trim() || undefined;
  }

  async removeProfile(address: string): Promise<void> {
    await rm(join(this.home, 'profiles', `${fileKey(address)}.json`), { force: true });
    await rm(this.sshCertificatePath(address), { force: true });
    if ((await this.currentAddress()) === address) await rm(join(this.home, 'current'), { force: true });
  }
}
