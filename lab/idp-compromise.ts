// The seed's IdP-compromise scenario as a lab ("Harden your Cluster Against IdP Compromises"): a lab IdP the
// test controls (its people in lab/oidc/users.yaml; setClaims is the attacker minting claims), a real
// keyport-auth with the web listener and the connector, configured as the seed recommends once set up
// (WebAuthn the only second factor, so MFA for admin actions; require_session_mfa; device trust required),
// a node (OpenSSH sshd + keyport-node) every admin may reach, and each person's hardware: the real admin's
// swtpm and security key, the attacker's own security key and TPM (never enrolled).
// Sign-ins go through Keyport's own client (loginWithSso), with LabBrowser as the person's browser.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { loginWithSso } from '../client/ceremonies/sso-login';
import type { DeviceTrustOptions } from '../client/device-trust/device';
import { enrollThisDevice } from '../client/device-trust/enroll';
import { connectAsProfile, webauthnOrigin } from '../client/session';
import { closeKeys, openKeys, register } from '../client/webauthn';
import { ChallengeScope, MFADeviceType } from '../proto/gen/keyport/v1/mfa';
import type { MFADevice } from '../proto/gen/keyport/v1/mfa';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import type { Profile } from '../client/profiles';
import { createLabClock } from './clock';
import type { LabClock } from './clock';
import { connectAsAdmin, openClusterDb, runAdmin, startLabCluster } from './cluster';
import type { LabCluster } from './cluster';
import { LabBrowser } from './oidc/browser';
import { startLabOidcProvider } from './oidc/provider';
import type { LabOidcProvider } from './oidc/provider';
import { labConnectorYaml, LAB_CLIENT_ID, LAB_CLIENT_SECRET } from './oidc/sso-lab';
import { followCallback, freePort } from './oidc/sso-login';
import { startSoftKey } from './security-key/soft-key';
import type { SoftKey } from './security-key/soft-key';
import { ensureLabAccounts, labNodeCommand, startLabNode } from './sshd';
import type { LabSshd, NodeCommand } from './sshd';
import { startLabTpm } from './tpm';
import type { LabTpm } from './tpm';

/** The node's login every admin has (a local account sshd logs in). */
export const NODE_LOGIN = 'idpops';
export const NODE_NAME = 'prod1';
export const CONNECTOR = 'lab';
/** The real admin's enrolled device. */
export const ADMIN_ASSET_TAG = 'IDP-ADMIN-1';

/** The connector: the IdP's `admins` group maps to editor (and ops, which reaches the node). */
export function connectorYaml(redirectUri: string, issuer: string, extra: string[] = []): string {
  return labConnectorYaml({ idp: { issuer }, redirectUri }, CONNECTOR, extra, {
    claimsToRoles: [
      '{claim: groups, value: admins, roles: [editor, ops]}',
      '{claim: groups, value: "team-*", roles: [member]}',
    ],
  });
}

const ROLES = `kind: role
version: v7
metadata:
  name: ops
spec:
  allow:
    logins: [${NODE_LOGIN}]
    node_labels:
      '*': '*'
---
kind: role
version: v7
metadata:
  name: member
spec:
  allow:
    logins: [member]
`;

/** The seed's recommendations, as one cap: WebAuthn only (MFA for admin actions), per-session MFA, device trust. */
export function hardenedCap(): string {
  return [
    'kind: cluster_auth_preference',
    'version: v2',
    'metadata:',
    '  name: cluster-auth-preference',
    'spec:',
    '  type: local',
    '  second_factors: [webauthn]',
    '  webauthn:',
    '    rp_id: localhost',
    '  require_session_mfa: true',
    '  device_trust:',
    '    mode: required',
    '',
  ].join('\n');
}

export interface IdpCompromiseLab {
  work: string;
  clock: LabClock;
  idp: LabOidcProvider;
  cluster: LabCluster;
  redirectUri: string;
  sshd: LabSshd;
  /** The real admin's (alice's) security key and enrolled TPM. */
  adminKey: SoftKey;
  adminTpm: LabTpm;
  /** The attacker's own security key and TPM: theirs, never registered or enrolled by the cluster. */
  attackerKey: SoftKey;
  attackerTpm: LabTpm;
  /** `keyport admin create -f` of a YAML text by the auth host's super-admin. */
  create(text: string, ...flags: string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startIdpCompromiseLab(): Promise<IdpCompromiseLab> {
  const work = await mkdtemp(join(tmpdir(), 'keyport-idp-compromise-'));
  const clock = createLabClock();
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => {});
    clock.dispose();
    await rm(work, { recursive: true, force: true });
  };
  try {
    ensureLabAccounts([NODE_LOGIN]);
    const webPort = await freePort();
    const redirectUri = `https://localhost:${webPort}/v1/webapi/oidc/callback`;
    const idp = await startLabOidcProvider({
      clients: [{ clientId: LAB_CLIENT_ID, clientSecret: LAB_CLIENT_SECRET, redirectUris: [redirectUri] }],
    });
    stops.push(() => idp.stop());
    await writeFile(join(work, 'idp-ca.pem'), idp.caPem);
    const [adminTpm, attackerTpm] = await Promise.all([startLabTpm(), startLabTpm()]);
    stops.push(
      () => adminTpm.stop(),
      () => attackerTpm.stop(),
    );
    const [adminKey, attackerKey] = await Promise.all(
      ['admin', 'attacker'].map((who) =>
        startSoftKey({
          socketPath: join(work, `${who}-key.sock`),
          statePath: join(work, `${who}-key.json`),
          touch: 'auto:20',
        }),
      ),
    );
    stops.push(
      () => adminKey!.stop(),
      () => attackerKey!.stop(),
    );
    const cluster = await startLabCluster({
      clusterName: 'idp-lab',
      env: clock.env,
      configYaml: [
        'auth_service:',
        '  public_addr: localhost:0',
        `  oidc_ca_file: ${join(work, 'idp-ca.pem')}`,
        '  authentication:',
        '    type: local',
        '    second_factors: [webauthn]',
        '    webauthn:',
        '      rp_id: localhost',
        '',
      ].join('\n'),
      extraArgs: ['--web-listen', `127.0.0.1:${webPort}`],
    });
    stops.push(() => cluster.stop());
    let files = 0;
    const create = async (text: string, ...flags: string[]) => {
      files += 1;
      const path = join(work, `doc-${files}.yaml`);
      await writeFile(path, text);
      const result = await runAdmin(cluster, ['create', '-f', path, ...flags], { env: clock.env });
      if (result.code !== 0) throw new Error(`create -f failed: ${result.stderr}`);
    };
    await create(ROLES);
    await create(connectorYaml(redirectUri, idp.issuer));
    const nodeCommand: NodeCommand = await labNodeCommand(clock.env);
    stops.push(() => nodeCommand.remove());
    const sshd = await startLabNode(cluster, {
      name: NODE_NAME,
      labels: 'env=prod',
      dir: join(work, `node-${NODE_NAME}`),
      nodeCommand,
    });
    stops.push(() => sshd.stop());
    return {
      work,
      clock,
      idp,
      cluster,
      redirectUri,
      sshd,
      adminKey: adminKey!,
      adminTpm,
      attackerKey: attackerKey!,
      attackerTpm,
      create,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A person's SSO sign-in through Keyport's own client (as `keyport login --auth=lab` runs it), the lab IdP's
 * login page answered by LabBrowser as `username`: the profile in `home`, or the error the login ended with.
 */
export async function ssoLogin(
  lab: IdpCompromiseLab,
  home: string,
  username: string,
  /** This machine's TPM; false: a machine without one (the attacker's). */
  device: DeviceTrustOptions | false,
): Promise<{ profiles: ProfileStore; profile: Profile }> {
  const profiles = new ProfileStore(home);
  let browsing: Promise<void> | undefined;
  const browse = async (url: string) => {
    const { callbackUrl, page } = await new LabBrowser(lab.idp.caPem).signIn(
      url,
      { username, password: `${username}-lab-password` },
      lab.redirectUri,
    );
    if (callbackUrl === undefined) throw new Error(`the IdP did not send the browser back: ${page.text}`);
    const callback = await followCallback(lab.cluster, callbackUrl);
    // The tab at the client's loopback address: answered once the code is redeemed (or refused).
    if (callback.location) await (await fetch(callback.location)).text();
  };
  try {
    const profile = await loginWithSso({
      profiles,
      address: parseClusterAddress(lab.cluster.address),
      caPin: lab.cluster.caPin,
      keystore: 'file',
      connector: CONNECTOR,
      device,
      prompts: {
        confirmCaPin: async () => false,
        openBrowser: (url) => {
          // The client waits for the browser's way back after this returns: the person browses meanwhile.
          browsing = browse(url);
          browsing.catch(() => {});
        },
      },
    });
    return { profiles, profile };
  } finally {
    await browsing?.catch(() => {});
  }
}

/** Audit rows of `type` after row `since` (an id), newest last. */
export function auditRows(
  cluster: LabCluster,
  type: string,
  since = 0,
): { id: number; actor: string; success: number; message: string; fields: Record<string, unknown> }[] {
  const db = openClusterDb(cluster);
  try {
    const rows = db
      .prepare(
        'SELECT id, actor, success, message, fields_json FROM audit_events WHERE type = ? AND id > ? ORDER BY id',
      )
      .all(type, since) as {
      id: number;
      actor: string;
      success: number;
      message: string;
      fields_json: string;
    }[];
    return rows.map(({ fields_json, ...row }) => ({
      ...row,
      fields: JSON.parse(fields_json) as Record<string, unknown>,
    }));
  } finally {
    db.close();
  }
}

/** The id of the latest audit row: refusals after it are the step's. */
export function auditMark(cluster: LabCluster): number {
  const db = openClusterDb(cluster);
  try {
    return (db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM audit_events').get() as { id: number }).id;
  } finally {
    db.close();
  }
}

/** The real admin's machine: her swtpm, under her device's asset tag. */
export function adminDevice(lab: IdpCompromiseLab): DeviceTrustOptions {
  return { env: { ...lab.adminTpm.env, KEYPORT_DEVICE_ASSET_TAG: ADMIN_ASSET_TAG } };
}

/**
 * Registers `key` as the caller's first MFA device through the API (a MANAGE_DEVICES challenge with nothing
 * to prove, then the new key's registration): what `keyport mfa add` does for a person with no device yet.
 */
export async function addFirstKey(
  api: ClusterApi,
  origin: string,
  key: SoftKey,
  name: string,
): Promise<MFADevice> {
  const existing = await api.user.createAuthenticateChallenge({
    scope: ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES,
    adminActions: [],
  });
  const challenge = await api.user.createRegisterChallenge({
    existingMfaResponse: { challengeId: existing.challengeId, response: undefined },
    deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
    passwordless: false,
  });
  const keys = await openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } });
  try {
    const registration = await register(challenge.webauthnCreationOptionsJson, {
      origin,
      keys,
      prompts: { tap: () => {}, pin: async () => '', newPin: async () => '', notice: () => {} },
    });
    return await api.user.addMfaDevice({
      newDevice: {
        challengeId: challenge.challengeId,
        deviceName: name,
        response: { $case: 'webauthnJson', value: JSON.stringify(registration) },
      },
    });
  } finally {
    await closeKeys(keys);
  }
}

export interface RealAdmin {
  home: string;
  profiles: ProfileStore;
  /** Her profile from an IdP login on her enrolled machine: the session carries the device. */
  profile: Profile;
  /** The WebAuthn origin of the cluster, for her key's answers. */
  origin: string;
  /** Her first security key, registered from that session. */
  firstKey: MFADevice;
  /** Her enrolled device's credential id. */
  deviceCredential: string;
}

/**
 * The real admin, alice, as the seed's cluster lets her start: a device admin registers her machine and gives
 * her a token; she signs in through the IdP, enrolls the machine's TPM with the token, signs in again (the
 * TPM's quote rides on the redemption) and registers her first key from that trusted session.
 */
export async function setUpRealAdmin(lab: IdpCompromiseLab): Promise<RealAdmin> {
  const home = join(lab.work, 'alice');
  const superAdmin = await connectAsAdmin(lab.cluster);
  let token: string;
  try {
    await superAdmin.devices.addDevice({ osType: 'linux', assetTag: ADMIN_ASSET_TAG });
    ({ token } = await superAdmin.devices.createDeviceEnrollToken({
      device: ADMIN_ASSET_TAG,
      ttlSeconds: 0,
    }));
  } finally {
    superAdmin.close();
  }
  const first = await ssoLogin(lab, home, 'alice', adminDevice(lab));
  const enrolled = await enrollThisDevice(first.profiles, first.profile, { token, ...adminDevice(lab) });
  const { profiles, profile } = await ssoLogin(lab, home, 'alice', adminDevice(lab));
  const trusted = (await profiles.getTrustedCluster(parseClusterAddress(profile.address)))!;
  const origin = webauthnOrigin(trusted);
  const api = await connectAsProfile(profiles, profile);
  try {
    const firstKey = await addFirstKey(api, origin, lab.adminKey, 'alice-key');
    return { home, profiles, profile, origin, firstKey, deviceCredential: enrolled.credentialId };
  } finally {
    api.close();
  }
}

/** What an admin write or a device registration changes (never the audit log, challenges or counters). */
export function storedState(lab: IdpCompromiseLab): string {
  const db = openClusterDb(lab.cluster);
  try {
    return JSON.stringify(
      [
        'users',
        'roles',
        'cluster_config',
        'mfa_devices',
        'trusted_devices',
        'device_enroll_tokens',
        'nodes',
        'oidc_connectors',
        'web_sessions',
      ].map((table) => db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all()),
    );
  } finally {
    db.close();
  }
}

/**
 * A web session of `user`, signed in through the IdP. The web UI's "Sign in with DISPLAY" is not built yet,
 * so the row is written as that sign-in will write it (auth/web-sessions.ts createWebSession's columns); the
 * browser then holds the cookie's token.
 */
export function ssoWebSession(lab: IdpCompromiseLab, user: string): { token: string } {
  const token = randomBytes(32).toString('base64url');
  const now = lab.clock.now();
  const db = openClusterDb(lab.cluster, { readonly: false });
  try {
    db.prepare(
      `INSERT INTO web_sessions (id, token_hash, user, login_method, mfa_verified, client_addr, user_agent,
        created_ms, expires_ms, device_id, device_asset_tag, device_trusted_ms)
       VALUES (?, ?, ?, ?, 0, '127.0.0.1', 'lab browser', ?, ?, NULL, NULL, NULL)`,
    ).run(
      randomBytes(16).toString('base64url'),
      createHash('sha256').update(token).digest('base64url'),
      user,
      `sso (${CONNECTOR})`,
      now,
      now + 60 * 60 * 1000,
    );
  } finally {
    db.close();
  }
  return { token };
}

/** A client of the cluster that has not signed in (StartSSOLogin, CreateSSOChallenge, RedeemSSOLogin). */
export async function anonymousApi(lab: IdpCompromiseLab): Promise<ClusterApi> {
  const identity = JSON.parse(await readFile(join(lab.cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
    caCertPem: string;
  };
  return connectCluster({
    address: parseClusterAddress(lab.cluster.address),
    caPem: identity.caCertPem,
    caPin: lab.cluster.caPin,
  });
}
