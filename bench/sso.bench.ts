// SSO login against the lab IdP vs. a local passwordless login, in the same run on the same keyport-auth,
// alternated so both see the same load: the ratio is SSO / passwordless. The SSO login is the CLI's
// ceremony (client/ceremonies/sso-login.ts: the session key, its loopback listener, StartSSOLogin, the
// browser, RedeemSSOLogin, the profile) with an HTTP client standing in for the browser (LabBrowser: the
// IdP's real login page, its form, the redirects, keyport-auth's callback, then the loopback address), as a
// person signs in with no session at the IdP yet. The passwordless login is `keyport login --auth
// passwordless` with the lab key touching itself and its PIN. Round trips of each are counted every login:
// gRPC calls (the client's onCall), HTTP requests from the browser to keyport-auth (its callback), to the IdP
// (the IdP's own request log) and to the loopback listener, and keyport-auth's own requests to the IdP
// (the code's exchange; discovery and the JWKS are cached). A login that makes other round trips than the
// first one did fails the run. The lab IdP runs in this process, beside the client.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loginPasswordless } from '../client/ceremonies/login';
import { loginWithSso } from '../client/ceremonies/sso-login';
import { parseClusterAddress } from '../client/cluster-trust';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import { takePerfRecords } from '../client/perf';
import { ProfileStore } from '../client/profiles';
import { runAdmin, startLabCluster } from '../lab/cluster';
import { scriptedKeyPrompts, signUpWithLabKey } from '../lab/connect';
import { LabBrowser } from '../lab/oidc/browser';
import { startLabOidcProvider } from '../lab/oidc/provider';
import type { LabOidcProvider } from '../lab/oidc/provider';
import { freePort } from '../lab/oidc/sso-login';
import { startSoftKey } from '../lab/security-key/soft-key';
import { median, report } from './stats';
import { breakdown, enableStepTimings, printBreakdown, serverRecords } from './steps';

const LOGINS = Number(process.env.BENCH_SSO_LOGINS ?? 12);
const PIN = '2468';

interface SsoRoundTrips {
  grpc: number;
  http_to_keyport_auth: number;
  http_to_idp_from_browser: number;
  http_to_loopback: number;
  http_to_idp_from_keyport_auth: number;
}

/** GET on the client's loopback address (plain HTTP, 127.0.0.1), as the browser follows the last redirect. */
function getLoopback(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Where the browser's time goes: the IdP's pages, keyport-auth's callback (with its code exchange), the tab. */
interface BrowserParts {
  idp: number[];
  callback: number[];
  loopback: number[];
}

/** The person's browser for one SSO login: the IdP's login page, keyport-auth's callback, the loopback. */
async function browse(
  idp: LabOidcProvider,
  trusted: string,
  authorizationUrl: string,
  redirectUri: string,
  count: SsoRoundTrips,
  parts: BrowserParts,
): Promise<void> {
  let at = performance.now();
  const lap = (into: number[]) => {
    const now = performance.now();
    into.push(now - at);
    at = now;
  };
  const browser = new LabBrowser(trusted);
  const idpBefore = idp.requests().length;
  const { callbackUrl } = await browser.signIn(
    authorizationUrl,
    { username: 'alice', password: 'alice-lab-password' },
    redirectUri,
  );
  // Every request the IdP saw meanwhile came from this browser (keyport-auth has not called it yet).
  count.http_to_idp_from_browser += idp.requests().length - idpBefore;
  if (callbackUrl === undefined) throw new Error('the IdP did not send the browser back');
  lap(parts.idp);
  const callback = await browser.request(callbackUrl);
  lap(parts.callback);
  count.http_to_keyport_auth += 1;
  if (callback.status !== 303 || callback.location === undefined) {
    throw new Error(`keyport-auth's callback answered ${callback.status}: ${callback.text}`);
  }
  count.http_to_loopback += 1;
  // The tab's answer waits for the redemption: this is the rest of the login, from the browser's side.
  const tab = await getLoopback(callback.location);
  lap(parts.loopback);
  if (tab !== 200) throw new Error(`the loopback tab answered ${tab}`);
}

export async function benchSso() {
  enableStepTimings();
  const work = await mkdtemp(join(tmpdir(), 'kp-bench-sso-'));
  const webPort = await freePort();
  const redirectUri = `https://localhost:${webPort}/v1/webapi/oidc/callback`;
  const idp = await startLabOidcProvider({
    clients: [{ clientId: 'keyport-lab', clientSecret: 'keyport-lab-secret', redirectUris: [redirectUri] }],
  });
  await writeFile(join(work, 'idp-ca.pem'), idp.caPem);
  const cluster = await startLabCluster({
    clusterName: 'bench-sso',
    dataDir: join(work, 'data'),
    configYaml: [
      'auth_service:',
      '  public_addr: localhost:0',
      `  oidc_ca_file: ${join(work, 'idp-ca.pem')}`,
      '  authentication:',
      '    type: local',
      '    second_factors: [webauthn, otp]',
      '    allow_passwordless: true',
      '    webauthn:',
      '      rp_id: localhost',
      '',
    ].join('\n'),
    extraArgs: ['--web-listen', `127.0.0.1:${webPort}`],
  });
  const key = await startSoftKey({
    socketPath: join(work, 'k.sock'),
    statePath: join(work, 'k.json'),
    touch: 'auto',
    pin: PIN,
  });
  const previousKeys = process.env[LAB_SECURITY_KEY_ENV];
  try {
    await writeFile(
      join(work, 'connector.yaml'),
      [
        'kind: oidc',
        'version: v3',
        'metadata:',
        '  name: lab',
        'spec:',
        `  issuer_url: ${idp.issuer}`,
        '  client_id: keyport-lab',
        '  client_secret: keyport-lab-secret',
        `  redirect_url: ${redirectUri}`,
        '  display: Lab IdP',
        '  scope: [email, groups]',
        '  claims_to_roles:',
        '    - {claim: groups, value: admins, roles: [access]}',
        '',
      ].join('\n'),
    );
    const created = await runAdmin(cluster, ['create', '-f', join(work, 'connector.yaml')]);
    if (created.code !== 0) throw new Error(`the connector: ${created.stderr}`);
    await signUpWithLabKey(cluster, {
      user: 'pia',
      roles: ['access'],
      password: 'pia-password-123',
      keySocket: key.socketPath,
      pin: PIN,
    });
    process.env[LAB_SECURITY_KEY_ENV] = key.socketPath;
    const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
      caCertPem: string;
    };
    const trusted = `${idp.caPem.trim()}\n${identity.caCertPem.trim()}\n`;
    const address = parseClusterAddress(cluster.address);
    const ssoProfiles = new ProfileStore(join(work, 'home-sso'));
    const passwordlessProfiles = new ProfileStore(join(work, 'home-passwordless'));
    const prompts = {
      confirmCaPin: async () => true,
      password: async () => Promise.reject(new Error('no password in a passwordless login')),
      otpCode: async () => Promise.reject(new Error('no OTP in a passwordless login')),
      securityKey: scriptedKeyPrompts(PIN),
    };

    const ssoCounts: SsoRoundTrips[] = [];
    const parts: BrowserParts = { idp: [], callback: [], loopback: [] };
    const passwordlessCounts: number[] = [];
    async function ssoLogin(): Promise<number> {
      const count: SsoRoundTrips = {
        grpc: 0,
        http_to_keyport_auth: 0,
        http_to_idp_from_browser: 0,
        http_to_loopback: 0,
        http_to_idp_from_keyport_auth: 0,
      };
      const idpBefore = idp.requests().length;
      let browsing: Promise<void> | undefined;
      const start = performance.now();
      const profile = await loginWithSso({
        profiles: ssoProfiles,
        address,
        caPin: cluster.caPin,
        keystore: 'file',
        connector: 'lab',
        onCall: () => (count.grpc += 1),
        prompts: {
          confirmCaPin: async () => true,
          // The person's browser runs beside the client, which waits on its loopback address meanwhile.
          openBrowser: (url) => {
            browsing = browse(idp, trusted, url, redirectUri, count, parts);
            browsing.catch(() => {});
          },
        },
      });
      await browsing;
      const elapsed = performance.now() - start;
      if (profile.user !== 'alice@keyport.lab') throw new Error(`signed in as ${profile.user}`);
      count.http_to_idp_from_keyport_auth =
        idp.requests().length - idpBefore - count.http_to_idp_from_browser;
      ssoCounts.push(count);
      return elapsed;
    }
    async function passwordlessLogin(): Promise<number> {
      let calls = 0;
      const start = performance.now();
      const profile = await loginPasswordless({
        profiles: passwordlessProfiles,
        address,
        caPin: cluster.caPin,
        keystore: 'file',
        prompts,
        onCall: () => (calls += 1),
      });
      const elapsed = performance.now() - start;
      if (profile.user !== 'pia') throw new Error(`signed in as ${profile.user}`);
      passwordlessCounts.push(calls);
      return elapsed;
    }

    // A warm-up of each (the CA trusted, the IdP's discovery and JWKS cached), then alternated.
    await ssoLogin();
    await passwordlessLogin();
    ssoCounts.length = 0;
    passwordlessCounts.length = 0;
    for (const list of Object.values(parts)) list.length = 0;
    const outputBefore = cluster.output().length;
    takePerfRecords();
    const sso: number[] = [];
    const passwordless: number[] = [];
    for (let i = 0; i < LOGINS; i++) {
      sso.push(await ssoLogin());
      passwordless.push(await passwordlessLogin());
    }
    const steps = breakdown([...takePerfRecords(), ...serverRecords(cluster.output(), outputBefore)]);
    printBreakdown('SSO login (lab IdP) and passwordless login', steps);

    const first = ssoCounts[0]!;
    const steady =
      ssoCounts.every((count) => JSON.stringify(count) === JSON.stringify(first)) &&
      passwordlessCounts.every((calls) => calls === passwordlessCounts[0]);
    const line = report(
      'SSO login (lab IdP, CLI ceremony, HTTP browser) vs passwordless login (soft key, PIN)',
      sso,
      'passwordless login, same run',
      passwordless,
      {
        sso_round_trips_per_login: first,
        passwordless_round_trips_per_login: { grpc: passwordlessCounts[0] ?? 0 },
        round_trips_steady: steady,
        sso_median_ms: Number(median(sso).toFixed(3)),
        sso_browser_parts_median_ms: {
          idp_pages: Number(median(parts.idp).toFixed(3)),
          keyport_auth_callback: Number(median(parts.callback).toFixed(3)),
          loopback_tab_until_redeemed: Number(median(parts.loopback).toFixed(3)),
        },
        passwordless_median_ms: Number(median(passwordless).toFixed(3)),
        steps,
      },
    );
    if (!steady) {
      console.error(`sso: round trips changed between logins: ${JSON.stringify(ssoCounts)}`);
    }
    return { ...line, round_trips_steady: steady };
  } finally {
    if (previousKeys === undefined) delete process.env[LAB_SECURITY_KEY_ENV];
    else process.env[LAB_SECURITY_KEY_ENV] = previousKeys;
    await key.stop();
    await cluster.stop();
    await idp.stop();
    await rm(work, { recursive: true, force: true });
  }
}
