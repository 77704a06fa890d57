// The web UI's sign-in with a password and a security key, over real HTTPS to keyport-auth's web listener
// (--web-listen), as the web app's page sends it: POST /v1/webapi/login/challenge with the password, the
// key's assertion, POST /v1/webapi/login, the session cookie and CSRF token back (each sign-in is checked
// by a sign-out that needs both), the page's Origin on every request, one kept-alive TLS connection as a
// browser has after loading the page. Against its floor measured in the same run: the bare unary calls a
// login makes (two gRPC health checks on an open mTLS channel) plus its deliberate crypto (one argon2id
// verify with the server's parameters, one assertion verify, auth/webauthn.ts). The assertion is signed in
// software with the passkey the lab soft key registered (its state file), as bench/passkey-assertion.ts makes it:
// a CTAP exchange would time the soft key, not the web sign-in. Then the approval ceremony's round trips
// (bench/web-approval.ts) on the same cluster. With step timings on (KEYPORT_PERF=1), it prints where the
// server spends the sign-in.
import { createPrivateKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword, verifyPassword } from '../auth/passwords';
import type { MfaDeviceRow } from '../auth/storage/store';
import { verifyAssertion } from '../auth/webauthn';
import { connectAsAdmin, openClusterDb, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { connectClusterConfig, signUpWithLabKey } from '../lab/connect';
import { startSoftKey } from '../lab/security-key/soft-key';
import { readState } from '../lab/security-key/state';
import { webClient } from '../lab/web';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../proto/webapi';
import { makeAssertion } from './passkey-assertion';
import type { LoadUser } from './passkey-assertion';
import { median, percentile, report } from './stats';
import { breakdown, enableStepTimings, printBreakdown, serverRecords } from './steps';
import { benchWebApproval, prepareWebApproval } from './web-approval';

const SIGN_INS = Number(process.env.BENCH_WEB_SIGN_INS ?? 40);
const PIN = '2468';
const PASSWORD = 'wes-password-123';
const RP_ID = 'localhost';
/** HTTP requests of one web sign-in (challenge, login), as the floor's bare calls count. */
const SIGN_IN_REQUESTS = 2;

type Web = Awaited<ReturnType<typeof webClient>>;

const cookieOf = (setCookie: string[] | undefined): string => (setCookie?.[0] ?? '').split(';')[0] ?? '';

/** Signs `person` in on the web UI with password + key; returns the session's cookie and CSRF token. */
export async function webSignIn(
  web: Web,
  person: { user: LoadUser; key: KeyObject; signCount: () => number },
  parts?: { challenge: number[]; assertion: number[]; login: number[] },
): Promise<{ cookie: string; csrf: string }> {
  let at = performance.now();
  const lap = (into: number[] | undefined) => {
    const now = performance.now();
    into?.push(now - at);
    at = now;
  };
  const challenge = await web.request('POST', WEBAPI.challenge, {
    body: { user: person.user.user, password: PASSWORD },
  });
  const options = challenge.json.webauthn as { challenge: string; rpId: string } | null;
  if (challenge.status !== 200 || !options) throw new Error(`web challenge: ${challenge.body}`);
  lap(parts?.challenge);
  const assertion = makeAssertion(person.user, person.key, options, web.origin, person.signCount());
  lap(parts?.assertion);
  const login = await web.request('POST', WEBAPI.login, {
    body: { challengeId: challenge.json.challengeId, webauthn: assertion },
  });
  if (login.status !== 200) throw new Error(`web login: ${login.body}`);
  lap(parts?.login);
  return { cookie: cookieOf(login.headers['set-cookie']), csrf: String(login.json.csrfToken) };
}

async function signOut(web: Web, browser: { cookie: string; csrf: string }): Promise<void> {
  const out = await web.request('DELETE', WEBAPI.session, {
    headers: { Cookie: browser.cookie, [WEBAPI_CSRF_HEADER]: browser.csrf },
  });
  if (out.status !== 200) throw new Error(`sign-out with the cookie and CSRF token: ${out.body}`);
}

/** The passkey the soft key holds for `user`, and a signature counter above the key's own. */
function passkeyOf(statePath: string, user: string) {
  const state = readState(statePath);
  const credential = state?.credentials.find((c) => c.rk && c.userName === user);
  if (!state || !credential?.userId) throw new Error(`the soft key holds no passkey for ${user}`);
  let counter = state.signCount + 1000;
  const loadUser: LoadUser = {
    user,
    credentialId: credential.id,
    userHandle: credential.userId,
    privateKeyPem: credential.privateKeyPem,
  };
  return { user: loadUser, key: createPrivateKey(credential.privateKeyPem), signCount: () => ++counter };
}

function storedPasskey(cluster: LabCluster, user: string): MfaDeviceRow {
  const db = openClusterDb(cluster);
  try {
    const row = db.prepare('SELECT * FROM mfa_devices WHERE user = ?').get(user) as MfaDeviceRow | undefined;
    if (!row) throw new Error(`no MFA device for ${user}`);
    return row;
  } finally {
    db.close();
  }
}

async function benchSignIn(cluster: LabCluster, web: Web, person: ReturnType<typeof passkeyOf>) {
  const passwordHash = await hashPassword('floor-password-123');
  const device = storedPasskey(cluster, person.user.user);
  const rp = { rpId: RP_ID, rpName: 'bench-web', allowedCas: [], deniedCas: [] };
  const api = await connectAsAdmin(cluster);
  const parts = { challenge: [] as number[], assertion: [] as number[], login: [] as number[] };
  const floorParts = { calls: [] as number[], argon2id: [] as number[], verify: [] as number[] };
  const signIns: number[] = [];
  const floor: number[] = [];
  const browsers: { cookie: string; csrf: string }[] = [];

  /** The floor's sample: the sign-in's bare calls and deliberate crypto, nothing else. */
  const floorOnce = async (i: number) => {
    const challenge = randomBytes(32).toString('base64url');
    const assertion = makeAssertion(person.user, person.key, { challenge, rpId: RP_ID }, web.origin, i + 1);
    const start = performance.now();
    if ((await api.health()) !== 'SERVING' || (await api.health()) !== 'SERVING')
      throw new Error('not serving');
    const called = performance.now();
    if (!(await verifyPassword(passwordHash, 'floor-password-123'))) throw new Error('argon2id floor');
    const hashed = performance.now();
    const verified = await verifyAssertion({
      rp,
      response: assertion,
      expectedChallenge: challenge,
      device: { ...device, webauthn_sign_count: 0 },
      requireUserVerification: false,
    });
    if (!verified.ok) throw new Error('the floor assertion did not verify');
    const end = performance.now();
    floorParts.calls.push(called - start);
    floorParts.argon2id.push(hashed - called);
    floorParts.verify.push(end - hashed);
    return end - start;
  };

  let steps;
  try {
    // Warm-up: the connections open, both sides' code paths compiled.
    await api.health();
    for (let i = 0; i < 3; i++) {
      await signOut(web, await webSignIn(web, person));
      await floorOnce(i);
    }
    const outputBefore = cluster.output().length;
    // Alternated, so the load of whatever else runs on this machine hits both alike.
    for (let i = 0; i < SIGN_INS; i++) {
      const start = performance.now();
      browsers.push(await webSignIn(web, person, parts));
      signIns.push(performance.now() - start);
      floor.push(await floorOnce(i));
    }
    steps = breakdown(serverRecords(cluster.output(), outputBefore));
  } finally {
    api.close();
  }
  // Each session's cookie and CSRF token work: a sign-out needs both.
  for (const browser of browsers) await signOut(web, browser);
  const ms = (samples: number[]) => Number(median(samples).toFixed(3));
  printBreakdown('web sign-in (password + security key), server', steps);
  return report(
    'web sign-in (password + security key, HTTPS)',
    signIns,
    '2 gRPC health checks on an open mTLS channel + argon2id verify + assertion verify',
    floor,
    {
      measured_p50_ms: ms(signIns),
      measured_p99_ms: Number(percentile(signIns, 99).toFixed(3)),
      floor_p99_ms: Number(percentile(floor, 99).toFixed(3)),
      http_requests_per_sign_in: SIGN_IN_REQUESTS,
      measured_parts_median_ms: {
        challenge_request: ms(parts.challenge),
        assertion_in_software: ms(parts.assertion),
        login_request: ms(parts.login),
      },
      floor_parts_median_ms: {
        two_health_checks: ms(floorParts.calls),
        argon2id_verify: ms(floorParts.argon2id),
        assertion_verify: ms(floorParts.verify),
      },
      steps,
    },
  );
}

export async function benchWeb() {
  enableStepTimings();
  const work = await mkdtemp(join(tmpdir(), 'kp-bench-web-'));
  const key = await startSoftKey({
    socketPath: join(work, 'k.sock'),
    statePath: join(work, 'k.json'),
    touch: 'auto',
    pin: PIN,
  });
  const cluster = await startLabCluster({
    clusterName: 'bench-web',
    configYaml:
      connectClusterConfig('localhost:0') +
      '  rate_limit:\n    per_address: 1000000\n    per_user: 1000000\n',
    extraArgs: ['--web-listen', '127.0.0.1:0'],
  });
  try {
    const web = await webClient(cluster);
    await signUpWithLabKey(cluster, {
      user: 'wes',
      roles: ['access'],
      password: PASSWORD,
      keySocket: key.socketPath,
      pin: PIN,
    });
    // Keyport Connect's session and device first: its login is the soft key's own assertion, whose counter
    // must come before the software assertions' (which start above it).
    const connect = await prepareWebApproval({
      cluster,
      home: join(work, 'connect'),
      keySocket: key.socketPath,
      pin: PIN,
      password: PASSWORD,
      user: 'wes',
    });
    try {
      const person = passkeyOf(key.statePath, 'wes');
      const signIn = await benchSignIn(cluster, web, person);
      const approval = await benchWebApproval(cluster, web, connect, () => webSignIn(web, person));
      return { signIn, approval };
    } finally {
      await connect.stop();
    }
  } finally {
    await cluster.stop();
    await key.stop();
    await rm(work, { recursive: true, force: true });
  }
}
