// SSO in `npm start` (lab/demo.ts): the lab OpenID Provider (lab/oidc) on 127.0.0.1, its CA for keyport-auth's
// oidc_ca_file, an oidc connector "lab-idp" ("Sign in with Lab IdP") whose claims_to_roles maps the lab users'
// groups, and the way the app's backend opens the IdP's page: a Chromium window with a private profile that
// trusts only the cluster's CA (the callback) and the IdP's lab CA, or, without a display, the URL printed.
// The IdP's CA and port are new at each start, so the connector is written again at each start.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OpenInBrowser } from '../main/backend/web-approval';
import { chromiumExecutable, hasDisplay, launchPage } from '../main/browser/chromium';
import { compileClaimMappings, mapClaimsToRoles } from '../proto/resources/claims-mapping';
import type { ClaimMapping } from '../proto/resources/claims-mapping';
import { trustClusterCaFlag } from './chromium';
import { connectAsAdmin } from './cluster';
import type { LabCluster } from './cluster';
import { startLabOidcProvider } from './oidc/provider';
import type { LabOidcProvider } from './oidc/provider';

export const DEMO_CONNECTOR = 'lab-idp';
const DEMO_CONNECTOR_DISPLAY = 'Lab IdP';
const CLIENT_ID = 'keyport-demo';
const CALLBACK_PATH = '/v1/webapi/oidc/callback';

/** The lab users' groups → the demo's roles: admins are editors, every team gets access; contractors nothing. */
const CLAIMS_TO_ROLES: ClaimMapping[] = [
  { claim: 'groups', value: 'admins', roles: ['access', 'editor'] },
  { claim: 'groups', value: 'team-*', roles: ['access'] },
];

export interface DemoSso {
  idp: LabOidcProvider;
  /** The IdP's CA, for keyport-auth's oidc_ca_file (written at each start). */
  caFile: string;
  /** Writes (or rewrites) the connector for this start's IdP and `cluster`'s web listener. */
  register(cluster: LabCluster): Promise<void>;
  /** The backend's opener: the IdP's pages in the SSO window, any other URL to `fallback`. */
  opener(cluster: LabCluster, fallback: OpenInBrowser): OpenInBrowser;
  bannerLines(): string[];
  /** Closes the SSO window (the Chromium this started, by its process group) and the IdP. */
  stop(): Promise<void>;
}

/**
 * Starts the lab IdP with a client whose redirect URIs are keyport-auth's callback on each of `webPorts`
 * (the demo's web port, and the one it falls back to), and writes its CA in `demoDir`.
 */
export async function startDemoSso(options: { demoDir: string; webPorts: number[] }): Promise<DemoSso> {
  const clientSecret = createHash('sha256').update(`keyport-demo-${Math.random()}`).digest('base64url');
  const idp = await startLabOidcProvider({
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret,
        redirectUris: options.webPorts.map((port) => `https://localhost:${port}${CALLBACK_PATH}`),
      },
    ],
  });
  const caFile = join(options.demoDir, 'idp-ca.pem');
  await writeFile(caFile, idp.caPem, { mode: 0o644 });
  let window: { child: ChildProcess; dir: string } | undefined;
  let launches = 0;

  const idpSpki = createHash('sha256')
    .update(new X509Certificate(idp.caPem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');

  /** The IdP's page in a Chromium window of its own; later logins open a tab in it while it runs. */
  async function openSsoWindow(cluster: LabCluster, url: string): Promise<void> {
    if (!hasDisplay(process.env)) {
      console.log(`Sign in with ${DEMO_CONNECTOR_DISPLAY}: open this URL in a browser on this machine:`);
      console.log(`  ${url}`);
      return;
    }
    if (window && window.child.exitCode === null && window.child.signalCode === null) {
      await launch(window.dir, url, cluster, false);
      return;
    }
    // The person closed the last window: its folder goes, a new window gets a fresh profile.
    if (window) await rm(window.dir, { recursive: true, force: true });
    const dir = await mkdtemp(join(tmpdir(), 'keyport-demo-sso-'));
    await chmod(dir, 0o700);
    await mkdir(join(dir, 'profile'), { mode: 0o700 });
    window = { child: await launch(dir, url, cluster, true), dir };
  }

  /** Chromium on a launch page in `dir` (0600) that goes on to `url`: the URL's state stays off the command line. */
  async function launch(
    dir: string,
    url: string,
    cluster: LabCluster,
    first: boolean,
  ): Promise<ChildProcess> {
    launches += 1;
    const file = join(dir, `sso-${launches}.html`);
    await writeFile(file, launchPage(url), { mode: 0o600 });
    const child = spawn(
      chromiumExecutable(process.env),
      [
        `--user-data-dir=${join(dir, 'profile')}`,
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--test-type',
        // This window trusts the cluster's CA (keyport-auth's callback) and the IdP's lab CA, nothing else.
        `${trustClusterCaFlag(cluster.caPin)},${idpSpki}`,
        ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
        pathToFileURL(file).href,
      ],
      { stdio: 'ignore', detached: first },
    );
    child.on('error', (error) => console.warn(`The SSO window could not open: ${error.message}`));
    if (!first) child.unref();
    return child;
  }

  return {
    idp,
    caFile,
    async register(cluster) {
      if (!cluster.webOrigin) throw new Error('the demo cluster has no web listener for the IdP callback');
      const connector = {
        kind: 'oidc',
        version: 'v3',
        metadata: { name: DEMO_CONNECTOR },
        spec: {
          issuer_url: idp.issuer,
          client_id: CLIENT_ID,
          client_secret: clientSecret,
          redirect_url: `${cluster.webOrigin}${CALLBACK_PATH}`,
          display: DEMO_CONNECTOR_DISPLAY,
          scope: ['email', 'profile', 'groups'],
          claims_to_roles: CLAIMS_TO_ROLES,
        },
      };
      const admin = await connectAsAdmin(cluster);
      try {
        await admin.admin.createResources({ documentsJson: [JSON.stringify(connector)], force: true });
      } finally {
        admin.close();
      }
    },
    opener: (cluster, fallback) => (url) =>
      url.startsWith(`${idp.issuer}/`) ? openSsoWindow(cluster, url) : fallback(url),
    bannerLines() {
      const compiled = compileClaimMappings(CLAIMS_TO_ROLES);
      const rolesOf = (groups: readonly string[]) =>
        compiled.ok ? mapClaimsToRoles(compiled.value, { groups }).roles : [];
      return [
        `  SSO:           "Sign in with ${DEMO_CONNECTOR_DISPLAY}" (oidc connector ${DEMO_CONNECTOR}), a lab OpenID Provider at ${idp.issuer}`,
        '                 its lab users (lab/oidc/users.yaml), user / password: groups → roles',
        ...idp.users().map((user) => {
          const roles = rolesOf(user.groups);
          return `                   ${user.username} / ${user.password}: ${user.groups.join(', ') || '(none)'} → ${
            roles.length > 0 ? roles.join(', ') : 'no role: denied'
          }`;
        }),
      ];
    },
    async stop() {
      const open = window;
      window = undefined;
      if (open && open.child.pid !== undefined && open.child.exitCode === null) {
        const exited = new Promise((resolve) => open.child.once('exit', resolve));
        try {
          process.kill(-open.child.pid, 'SIGTERM');
        } catch {
          // Already gone.
        }
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
      }
      if (open) await rm(open.dir, { recursive: true, force: true });
      await idp.stop();
    },
  };
}
