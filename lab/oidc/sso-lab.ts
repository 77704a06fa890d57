// A whole SSO lab for a test: the lab IdP, a real keyport-auth with its web listener (the IdP's callback)
// trusting the IdP's CA, on a lab clock, with an `oidc` connector "lab" for it; and `keyport login
// --auth=NAME --browser=none` run as a person would, with LabBrowser playing their browser at the IdP.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectCluster } from '../../client/api';
import type { ClusterApi } from '../../client/api';
import { parseClusterAddress } from '../../client/cluster-trust';
import { createLabClock } from '../clock';
import type { LabClock } from '../clock';
import { keyportCliPath, openClusterDb, repoRoot, runAdmin, startLabCluster } from '../cluster';
import type { LabCluster } from '../cluster';
import { startSoftKey } from '../security-key/soft-key';
import type { SoftKey } from '../security-key/soft-key';
import { LabBrowser } from './browser';
import { startLabOidcProvider } from './provider';
import type { LabOidcProvider } from './provider';
import { followCallback, freePort } from './sso-login';

export const LAB_CLIENT_ID = 'keyport-lab';
export const LAB_CLIENT_SECRET = 'keyport-lab-client-secret';

export interface SsoLab {
  work: string;
  clock: LabClock;
  idp: LabOidcProvider;
  cluster: LabCluster;
  /** An unauthenticated client of the cluster (StartSSOLogin, RedeemSSOLogin). */
  api: ClusterApi;
  /** The connector's redirect_url: keyport-auth's callback on its web listener. */
  redirectUri: string;
  /** `keyport admin create -f` of a YAML text (as the super-admin); `--force` and the like in `flags`. */
  create(text: string, ...flags: string[]): Promise<void>;
  /** The newest audit row of `type`, its fields parsed. */
  lastAudit(type: string): AuditRow;
  stop(): Promise<void>;
}

export interface AuditRow {
  actor: string;
  success: number;
  message: string;
  fields: Record<string, unknown>;
}

/**
 * `authentication` for a cluster set up as the IdP-compromise seed recommends: security keys the only second
 * factor (rp_id localhost, so a lab started with `publicAddr: 'localhost:0'`), device trust required.
 */
export const WEBAUTHN_DEVICE_TRUST_REQUIRED = [
  '    type: local',
  '    second_factors: [webauthn]',
  '    webauthn:',
  '      rp_id: localhost',
  '    device_trust:',
  '      mode: required',
  '      auto_enroll: true',
];

/** A lab soft security key `name` in the lab's folder, touched 20 ms after each ask. */
export function labSoftKey(lab: Pick<SsoLab, 'work'>, name: string): Promise<SoftKey> {
  return startSoftKey({
    socketPath: join(lab.work, `${name}.sock`),
    statePath: join(lab.work, `${name}.json`),
    touch: 'auto:20',
  });
}

/** The lab connector's claims_to_roles: the IdP's `admins` group → editor, any `team-*` group → access. */
export const LAB_CLAIMS_TO_ROLES = [
  '{claim: groups, value: admins, roles: [editor]}',
  '{claim: groups, value: "team-*", roles: [access]}',
];

/**
 * An oidc connector for the lab IdP; `extra` lines go in its spec (e.g. `  require_local_mfa: true`).
 * `issuer` (the lab IdP's by default) and `claimsToRoles` (LAB_CLAIMS_TO_ROLES) change those fields.
 */
export function labConnectorYaml(
  lab: { idp: Pick<LabOidcProvider, 'issuer'>; redirectUri: string },
  name: string,
  extra: string[] = [],
  options: { issuer?: string; claimsToRoles?: string[] } = {},
) {
  return [
    'kind: oidc',
    'version: v3',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  issuer_url: ${options.issuer ?? lab.idp.issuer}`,
    `  client_id: ${LAB_CLIENT_ID}`,
    `  client_secret: ${LAB_CLIENT_SECRET}`,
    `  redirect_url: ${lab.redirectUri}`,
    '  display: Lab IdP',
    '  scope: [email, profile, groups]',
    ...extra,
    '  claims_to_roles:',
    ...(options.claimsToRoles ?? LAB_CLAIMS_TO_ROLES).map((rule) => `    - ${rule}`),
    '',
  ].join('\n');
}

/**
 * The lab IdP (its client for keyport-auth's callback) and keyport-auth trusting it, with its web listener,
 * in `work`: `authentication` is the YAML under auth_service.authentication, indented four spaces.
 */
export async function startIdpAndCluster(
  work: string,
  options: {
    clusterName: string;
    authentication: string[];
    publicAddr?: string;
    client?: { clientId: string; clientSecret: string };
    env?: Record<string, string>;
  },
): Promise<{ idp: LabOidcProvider; cluster: LabCluster; redirectUri: string }> {
  const webPort = await freePort();
  const redirectUri = `https://localhost:${webPort}/v1/webapi/oidc/callback`;
  const client = options.client ?? { clientId: LAB_CLIENT_ID, clientSecret: LAB_CLIENT_SECRET };
  const idp = await startLabOidcProvider({ clients: [{ ...client, redirectUris: [redirectUri] }] });
  await writeFile(join(work, 'idp-ca.pem'), idp.caPem);
  const cluster = await startLabCluster({
    clusterName: options.clusterName,
    dataDir: join(work, 'data'),
    configYaml: [
      'auth_service:',
      ...(options.publicAddr ? [`  public_addr: ${options.publicAddr}`] : []),
      `  oidc_ca_file: ${join(work, 'idp-ca.pem')}`,
      '  authentication:',
      ...options.authentication,
      '',
    ].join('\n'),
    extraArgs: ['--web-listen', `127.0.0.1:${webPort}`],
    ...(options.env ? { env: options.env } : {}),
  });
  return { idp, cluster, redirectUri };
}

/**
 * Starts the IdP and keyport-auth (`authentication` is the YAML under auth_service.authentication, indented
 * four spaces) and creates the connector "lab" (with `connectorExtra` in its spec).
 */
export async function startSsoLab(options: {
  clusterName: string;
  authentication: string[];
  connectorExtra?: string[];
  publicAddr?: string;
}): Promise<SsoLab> {
  const work = await mkdtemp(join(tmpdir(), `keyport-${options.clusterName}-`));
  const clock = createLabClock();
  const { idp, cluster, redirectUri } = await startIdpAndCluster(work, { ...options, env: clock.env });
  const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
    caCertPem: string;
  };
  const api = connectCluster({
    address: parseClusterAddress(cluster.address),
    caPem: identity.caCertPem,
    caPin: cluster.caPin,
  });
  let files = 0;
  const lab: SsoLab = {
    work,
    clock,
    idp,
    cluster,
    api,
    redirectUri,
    async create(text, ...flags) {
      files += 1;
      const path = join(work, `doc-${files}.yaml`);
      await writeFile(path, text);
      const result = await runAdmin(cluster, ['create', '-f', path, ...flags]);
      if (result.code !== 0) throw new Error(`keyport admin create failed: ${result.stderr}`);
    },
    lastAudit(type) {
      const db = openClusterDb(cluster);
      try {
        const row = db
          .prepare(
            'SELECT actor, success, message, fields_json FROM audit_events WHERE type = ? ORDER BY id DESC LIMIT 1',
          )
          .get(type) as { actor: string; success: number; message: string; fields_json: string };
        return { ...row, fields: JSON.parse(row.fields_json) as Record<string, unknown> };
      } finally {
        db.close();
      }
    },
    async stop() {
      api.close();
      await cluster.stop();
      await idp.stop();
      clock.dispose();
      await rm(work, { recursive: true, force: true });
    },
  };
  await lab.create(labConnectorYaml(lab, 'lab', options.connectorExtra));
  return lab;
}

export interface SsoCliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What the CLI's loopback page told the person's tab, when the browser got there. */
  tab?: { status: number; text: string };
}

/**
 * `keyport login --auth=CONNECTOR --browser=none` in KEYPORT_HOME `home`, as `user` at the IdP (their lab
 * password); `env` adds the TPM's, a security key's or the clock's. `stdin` answers the CLI's prompts.
 */
export async function ssoCliLogin(
  lab: SsoLab,
  options: { home: string; user: string; connector?: string; env?: Record<string, string>; stdin?: string },
): Promise<SsoCliResult> {
  const child = spawn(
    process.execPath,
    [
      keyportCliPath,
      'login',
      ...['--cluster', lab.cluster.address, '--ca-pin', lab.cluster.caPin],
      `--auth=${options.connector ?? 'lab'}`,
      ...['--browser=none', '--keystore', 'file'],
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, ...lab.clock.env, ...options.env, KEYPORT_HOME: options.home },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  child.stdin.end(options.stdin ?? '');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = await new Promise<string | undefined>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const found = /^(https:\/\/127\.0\.0\.1:\d+\/\S+)$/m.exec(stderr);
      if (found) resolve(found[1]!);
    });
    void exited.then(() => resolve(undefined));
  });
  let tab: SsoCliResult['tab'];
  if (url !== undefined) {
    const { callbackUrl } = await new LabBrowser(lab.idp.caPem).signIn(
      url,
      { username: options.user, password: `${options.user}-lab-password` },
      lab.redirectUri,
    );
    const callback = callbackUrl ? await followCallback(lab.cluster, callbackUrl) : undefined;
    if (callback?.location) {
      const response = await fetch(callback.location);
      tab = { status: response.status, text: await response.text() };
    }
  }
  const code = await exited;
  return { code, stdout, stderr, ...(tab ? { tab } : {}) };
}
