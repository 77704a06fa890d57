// Login refused, through real processes (issue 2, "What must be shown": negative tests; docs/architecture.md
// invariants 5 and 6). Each refusal is checked three ways: the typed error (the CLI's exit code from
// cli/exit-codes.ts and a clear message), that nothing stored changed (the files under KEYPORT_HOME, the
// user resource with its lock state, the user's MFA devices with the last TOTP step spent), and that the
// audit log records the failure with its reason.
import { X509Certificate } from 'node:crypto';
import { readdir, readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { totpCode } from '../auth/totp';
import { EXIT } from '../cli/exit-codes';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { FileStore, fileKeyStoreDir } from '../client/keystore';
import type { Profile, TrustedCluster } from '../client/profiles';
import {
  connectAsAdmin,
  loginUser,
  nextTotpCode,
  openClusterDb,
  runAdmin,
  runKeyport,
  signUpUserInProcess,
  startLabCluster,
} from '../lab/cluster';
import type { CliResult, LabCluster, SignedUpUser } from '../lab/cluster';
import { createLabClock } from '../lab/clock';

/** Default policy: 5 failures within 30 minutes lock the user for 30 minutes. */
let cluster: LabCluster;
/** `lockout.max_attempts: 2` from a config file. */
let strict: LabCluster;
/** Stopped and replaced by a cluster with a new CA on the same port (the CA-change test). */
let doomed: LabCluster;
/** On a lab clock that the expiry test moves forward (lab/clock.ts). */
let clocked: LabCluster;
const clock = createLabClock();
let homes: string;
const people: Record<string, SignedUpUser> = {};

const SHORT_SESSIONS_ROLE = `kind: role
version: v7
metadata:
  name: short-sessions
spec:
  options:
    max_session_ttl: 1h
  allow:
    logins: ['{{internal.logins}}']
`;

const home = (name: string) => join(homes, name);

beforeAll(async () => {
  homes = await mkdtemp(join(tmpdir(), 'keyport-login-negative-'));
  [cluster, strict, doomed, clocked] = await Promise.all([
    startLabCluster({ clusterName: 'negative' }),
    startLabCluster({
      clusterName: 'strict',
      configYaml: 'auth_service:\n  lockout:\n    max_attempts: 2\n',
    }),
    startLabCluster({ clusterName: 'rebuilt' }),
    startLabCluster({ clusterName: 'clocked', env: clock.env }),
  ]);
  const roleFile = join(homes, 'short-sessions.yaml');
  await writeFile(roleFile, SHORT_SESSIONS_ROLE);
  const created = await runAdmin(cluster, ['create', '-f', roleFile]);
  expect(created.stderr).toBe('');
  const signups: [LabCluster, string, string[]][] = [
    [cluster, 'wanda', ['access']],
    [cluster, 'otto', ['access']],
    [cluster, 'rita', ['access']],
    [cluster, 'lars', ['access']],
    [clocked, 'exa', ['access']],
    [cluster, 'dora', ['editor']],
    [cluster, 'liam', ['editor']],
    [cluster, 'tess', ['access', 'short-sessions']],
    [strict, 'sam', ['access']],
    [doomed, 'pat', ['access']],
  ];
  // Signup is not the subject here (test/signup-negative.test.ts drives it through the CLI): the
  // in-process ceremony saves twenty CLI processes.
  await Promise.all(
    signups.map(async ([target, name, roles]) => {
      people[name] = await signUpUserInProcess(target, home(name), name, roles);
    }),
  );
});

afterAll(async () => {
  await Promise.all([cluster?.stop(), strict?.stop(), doomed?.stop(), clocked?.stop()]);
  clock.dispose();
  await rm(homes, { recursive: true, force: true });
});

/** `keyport login` with the file keystore, the password and (when given) an OTP code on stdin. */
function attemptLogin(
  target: LabCluster,
  name: string,
  password: string,
  otpCode?: string,
  extraArgs: string[] = [],
): Promise<CliResult> {
  return runKeyport(
    [
      'login',
      '--cluster',
      target.address,
      '--user',
      name,
      '--ca-pin',
      target.caPin,
      '--password-stdin',
      '--keystore',
      'file',
      ...extraArgs,
    ],
    { home: home(name), input: otpCode === undefined ? [password] : [password, otpCode] },
  );
}

function loginAs(target: LabCluster, name: string, extraArgs: string[] = []): Promise<CliResult> {
  return loginUser(target, home(name), people[name] as SignedUpUser, ['--keystore', 'file', ...extraArgs]);
}

/** A six-digit code that matches none of the steps the server could accept around now. */
function wrongTotpCode(secret: string): string {
  const near = new Set([-3, -2, -1, 0, 1, 2, 3].map((k) => totpCode(secret, Date.now() + k * 30_000)));
  for (let n = 500_000; ; n++) {
    const code = String((Number(totpCode(secret, Date.now())) + n) % 1_000_000).padStart(6, '0');
    if (!near.has(code)) return code;
  }
}

/** Every file under a KEYPORT_HOME, path → contents (profiles, trusted CAs, key files). */
async function filesUnder(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const files: Record<string, string> = {};
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[relative(dir, path)] = await readFile(path, 'utf8');
  }
  return files;
}

interface StoredUser {
  /** `keyport admin get user/NAME`: spec and status (created, locked until, lock reason). */
  resource: { spec: Record<string, unknown>; status: { locked_until_ms?: number; lock_reason?: string } };
  /** The user's row and MFA devices as stored, with the last TOTP step spent. */
  row: unknown;
  devices: unknown[];
}

/**
 * Looks through the super-admin identity `keyport admin --data-dir` uses, in process (the CLI's own
 * `admin get` and `admin audit` are exercised in the lockout test), and in the database for what the API
 * does not show.
 */
async function storedUser(target: LabCluster, name: string): Promise<StoredUser> {
  const admin = await connectAsAdmin(target);
  const got = await admin.admin.getResource({ kind: 'user', name }).finally(() => admin.close());
  const db = openClusterDb(target);
  try {
    return {
      resource: JSON.parse(got.json),
      row: db.prepare('select * from users where name = ?').get(name),
      devices: db.prepare('select * from mfa_devices where user = ? order by id').all(name),
    };
  } finally {
    db.close();
  }
}

interface AuditEvent {
  type: string;
  actor: string;
  clientAddr: string;
  success: boolean;
  message: string;
  fields: Record<string, unknown>;
}

async function auditOf(target: LabCluster, type: string, actor: string): Promise<AuditEvent[]> {
  const admin = await connectAsAdmin(target);
  const { events } = await admin.admin
    .listAuditEvents({ sinceMs: 0, type, limit: 0 })
    .finally(() => admin.close());
  return events
    .map((event) => ({ ...event, fields: JSON.parse(event.fieldsJson) as Record<string, unknown> }))
    .filter((event) => event.actor === actor);
}

/** The same, as `keyport admin --data-dir DIR audit --json --type TYPE` prints it. */
async function auditOfCli(target: LabCluster, type: string, actor: string): Promise<AuditEvent[]> {
  const listed = await runAdmin(target, ['audit', '--json', '--type', type]);
  expect(listed.code).toBe(0);
  return listed.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((event) => event.actor === actor);
}

const profilePath = (target: LabCluster, name: string) =>
  join(home(name), 'profiles', `127.0.0.1_${target.port}.json`);

async function readProfile(target: LabCluster, name: string): Promise<Profile> {
  return JSON.parse(await readFile(profilePath(target, name), 'utf8')) as Profile;
}

/**
 * The API as the profile's user, built by hand (no local expiry check as `keyport` does): the profile's
 * certificate, its private key from the file keystore and the trusted CA.
 */
async function connectWithProfile(target: LabCluster, name: string): Promise<ClusterApi> {
  const profile = await readProfile(target, name);
  const trusted = JSON.parse(
    await readFile(join(home(name), 'clusters', `127.0.0.1_${target.port}.json`), 'utf8'),
  ) as TrustedCluster;
  return connectCluster({
    address: parseClusterAddress(profile.address),
    caPem: trusted.caPem,
    caPin: trusted.caPin,
    clientKeyPem: await new FileStore(fileKeyStoreDir(home(name))).get(profile.keyId),
    clientCertPem: profile.tlsCertPem,
  });
}

const INVALID_CREDENTIALS = 'ERROR: Invalid user name or password.';

describe('login with a wrong password or TOTP code', () => {
  it('refuses a wrong password with ACCESS_DENIED, audits "wrong password" and stores nothing', async () => {
    const [files, user] = await Promise.all([filesUnder(home('wanda')), storedUser(cluster, 'wanda')]);

    const refused = await attemptLogin(cluster, 'wanda', 'not-the-password-1');
    expect(refused.code).toBe(EXIT.accessDenied);
    expect(refused.stderr).toContain(INVALID_CREDENTIALS);
    expect(refused.stdout).toBe('');

    // Only the CA trusted at signup: no profile, no certificate, no orphan key file.
    const after = await filesUnder(home('wanda'));
    expect(Object.keys(after)).toEqual([`clusters/127.0.0.1_${cluster.port}.json`]);
    expect(after).toEqual(files);
    expect(await storedUser(cluster, 'wanda')).toEqual(user);
    expect(await auditOf(cluster, 'user.login', 'wanda')).toEqual([
      expect.objectContaining({ success: false, message: 'wrong password', clientAddr: expect.any(String) }),
    ]);
  });

  it('gives an unknown user the very same answer as a wrong password', async () => {
    const [unknown, wrong] = await Promise.all([
      attemptLogin(cluster, 'nobody', 'some-password-123'),
      attemptLogin(cluster, 'wanda', 'not-the-password-2'),
    ]);
    expect(unknown.code).toBe(EXIT.accessDenied);
    expect(unknown.code).toBe(wrong.code);
    expect(unknown.stderr).toContain(INVALID_CREDENTIALS);
    expect(unknown.stderr).toBe(wrong.stderr);

    const lookup = await runAdmin(cluster, ['get', 'user/nobody']);
    expect(lookup.code).toBe(EXIT.notFound);
    const files = await filesUnder(home('nobody'));
    expect(Object.keys(files).filter((path) => !path.startsWith('clusters/'))).toEqual([]);
    expect(await auditOf(cluster, 'user.login', 'nobody')).toEqual([
      expect.objectContaining({ success: false, message: 'unknown user' }),
    ]);
  });

  it('refuses a wrong TOTP code with MFA_FAILED and leaves the device unchanged', async () => {
    const otto = people.otto as SignedUpUser;
    const [files, user] = await Promise.all([filesUnder(home('otto')), storedUser(cluster, 'otto')]);

    const refused = await attemptLogin(cluster, 'otto', otto.password, wrongTotpCode(otto.totpSecret));
    expect(refused.code).toBe(EXIT.mfa);
    expect(refused.stderr).toContain('ERROR: The OTP code is wrong; sign in again with the current code.');

    expect(await filesUnder(home('otto'))).toEqual(files);
    expect(await storedUser(cluster, 'otto')).toEqual(user);
    expect(await auditOf(cluster, 'user.login', 'otto')).toEqual([
      expect.objectContaining({ success: false, message: 'wrong OTP code' }),
    ]);
  });

  it('refuses a replayed TOTP code', async () => {
    const rita = people.rita as SignedUpUser;
    const code = nextTotpCode(rita.totpSecret);
    const first = await attemptLogin(cluster, 'rita', rita.password, code);
    expect(first.stderr).not.toMatch(/ERROR/);
    expect(first.code).toBe(0);
    const [files, user] = await Promise.all([filesUnder(home('rita')), storedUser(cluster, 'rita')]);

    const replayed = await attemptLogin(cluster, 'rita', rita.password, code);
    expect(replayed.code).toBe(EXIT.mfa);
    expect(replayed.stderr).toContain(
      'ERROR: This OTP code was already used; wait for the next code and sign in again.',
    );

    // The first login's profile and key stay as they were; the device's spent step did not move.
    expect(await filesUnder(home('rita'))).toEqual(files);
    expect(await storedUser(cluster, 'rita')).toEqual(user);
    expect(await auditOf(cluster, 'user.login', 'rita')).toEqual([
      expect.objectContaining({ success: true, message: 'password and OTP' }),
      expect.objectContaining({ success: false, message: 'OTP code reused' }),
    ]);
  });
});

describe('lockout', () => {
  /** The lockout as an unauthenticated caller hears it: the same for every name, naming none. */
  const LOCKED_OUT =
    /^ERROR: Too many failed sign-ins for this account from this address\. Try again after (\d{4}-\d\d-\d\dT[\d:.]+Z), or ask an administrator to unlock the account\.$/m;

  it('locks an address out of a user after 5 failures, says so to the right password too, and an admin unlock lets them in', async () => {
    const before = await storedUser(cluster, 'lars');
    for (let attempt = 1; attempt <= 4; attempt++) {
      const refused = await attemptLogin(cluster, 'lars', `wrong-password-${attempt}`);
      expect(refused.code).toBe(EXIT.accessDenied);
      expect(refused.stderr).toContain(INVALID_CREDENTIALS);
    }
    const fifth = await attemptLogin(cluster, 'lars', 'wrong-password-5');
    const fifthAt = Date.now();
    expect(fifth.code).toBe(EXIT.locked);
    const until = LOCKED_OUT.exec(fifth.stderr)?.[1];
    expect(until, fifth.stderr).toBeDefined();
    expect(fifth.stderr).not.toContain('lars');
    const untilMs = Date.parse(until as string);
    expect(untilMs - fifthAt).toBeGreaterThan(29 * 60_000);
    expect(untilMs - fifthAt).toBeLessThanOrEqual(30 * 60_000);

    // The right password from this address hears the same lockout; nothing is issued.
    const rightPassword = await loginAs(cluster, 'lars');
    expect(rightPassword.code).toBe(EXIT.locked);
    expect(LOCKED_OUT.exec(rightPassword.stderr)?.[1]).toBe(until);
    expect(await filesUnder(home('lars'))).not.toHaveProperty(`profiles/127.0.0.1_${cluster.port}.json`);

    // The user itself is not locked (the person elsewhere may sign in); the admin sees the lockout.
    expect((await storedUser(cluster, 'lars')).resource.status.locked_until_ms).toBeUndefined();
    expect((await storedUser(cluster, 'lars')).devices).toEqual(before.devices);
    const shown = await runAdmin(cluster, ['get', 'user/lars']);
    expect(shown.code).toBe(0);
    expect(parseYaml(shown.stdout).status.locked_out).toEqual([
      { client_addr: '127.0.0.1', failed_attempts: 5, until_ms: untilMs },
    ]);
    const listed = await runAdmin(cluster, ['users', 'ls']);
    expect(listed.stdout).toMatch(new RegExp(`lars .*locked out from 127\\.0\\.0\\.1 until ${until}`));
    const logins = await auditOfCli(cluster, 'user.login', 'lars');
    expect(logins.map((event) => [event.success, event.message])).toEqual([
      ...Array.from({ length: 5 }, () => [false, 'wrong password']),
      [false, 'locked out or busy'],
    ]);
    expect(await auditOf(cluster, 'user.lockout', 'system')).toContainEqual(
      expect.objectContaining({
        clientAddr: expect.stringContaining('127.0.0.1'),
        fields: { user: 'lars', known_user: true, locked_until_ms: untilMs },
      }),
    );

    const unlocked = await runAdmin(cluster, ['users', 'unlock', 'lars']);
    expect(unlocked.code).toBe(0);
    const again = await loginAs(cluster, 'lars');
    expect(again.stderr).not.toMatch(/ERROR/);
    expect(again.code).toBe(0);
  });

  it('takes the lockout policy from the config file (max_attempts: 2), and a name of no user hears the same', async () => {
    const answers: string[] = [];
    for (const name of ['sam', 'nobody-by-this-name']) {
      const first = await attemptLogin(strict, name, 'wrong-password-1');
      expect(first.code).toBe(EXIT.accessDenied);
      expect(first.stderr).toContain(INVALID_CREDENTIALS);
      const second = await attemptLogin(strict, name, 'wrong-password-2');
      expect(second.code).toBe(EXIT.locked);
      expect(second.stderr).toMatch(LOCKED_OUT);
      expect(second.stderr).not.toContain(name);
      const third = await attemptLogin(strict, name, 'wrong-password-3');
      expect(third.code).toBe(EXIT.locked);
      answers.push(third.stderr.replace(LOCKED_OUT, 'LOCKED OUT'));
    }
    // Same code, same words: nothing tells the real user from the name of no one.
    expect(answers[0]).toBe(answers[1]);
    expect(await auditOf(strict, 'user.lockout', 'system')).toEqual([
      expect.objectContaining({ fields: expect.objectContaining({ user: 'sam', known_user: true }) }),
      expect.objectContaining({
        fields: expect.objectContaining({ user: 'nobody-by-this-name', known_user: false }),
      }),
    ]);
  });
});

// Independent users and clusters: these run side by side, to keep the file fast.
describe.concurrent('certificates that no longer work', () => {
  it('refuses an expired certificate, in the CLI and on the server', async ({ expect }) => {
    // Time is the lab clock's (lab/clock.ts), shared by this cluster and the CLI: the certificate expires
    // when the test moves the clock, never while a loaded machine is still starting a process.
    const login = await loginUser(
      clocked,
      home('exa'),
      people['exa'] as SignedUpUser,
      ['--keystore', 'file', '--ttl', '5m'],
      clock.env,
    );
    expect(login.code).toBe(0);
    const profile = await readProfile(clocked, 'exa');
    expect(profile.expiresMs - clock.now()).toBeLessThanOrEqual(5 * 60_000);
    expect(profile.expiresMs - clock.now()).toBeGreaterThan(0);
    const before = await runKeyport(['status'], { home: home('exa'), env: clock.env });
    expect(before.code).toBe(0);
    // A connection made while the certificate was valid: TLS accepted it once, for good.
    const early = await connectWithProfile(clocked, 'exa');
    expect(await early.user.ping({})).toHaveProperty('serverTimeMs');

    // One second past the end: the CLI and the server both see it on the same clock.
    clock.advance(Math.max(0, profile.expiresMs - clock.now()) + 1000);
    const files = await filesUnder(home('exa'));

    // The CLI looks at the profile's expiry before it connects.
    const local = await runKeyport(['admin', 'users', 'ls'], { home: home('exa'), env: clock.env });
    expect(local.code).toBe(EXIT.expired);
    expect(local.stderr).toContain(
      `ERROR: Your session on ${clocked.address} has expired: run \`keyport login\`.`,
    );
    const status = await runKeyport(['status'], { home: home('exa'), env: clock.env });
    expect(status.code).toBe(EXIT.expired);

    // A client that presents the expired certificate anyway is refused by the server itself: on the
    // connection opened while it was valid (TLS does not look again), and on a new one.
    const fresh = await connectWithProfile(clocked, 'exa');
    try {
      for (const api of [early, fresh]) {
        await expect(api.user.ping({})).rejects.toMatchObject({
          code: 'CERTIFICATE_EXPIRED',
          message: 'Your session has expired: run `keyport login` again.',
          fields: { resolvableByRelogin: true },
        });
      }
    } finally {
      early.close();
      fresh.close();
    }
    expect(await filesUnder(home('exa'))).toEqual(files);
  });

  it('refuses the certificate of a deleted user', async ({ expect }) => {
    expect((await loginAs(cluster, 'dora')).code).toBe(0);
    const api = await connectWithProfile(cluster, 'dora');
    try {
      expect(await api.user.getStatus({})).toMatchObject({ user: 'dora', roles: ['editor'] });

      const removed = await runAdmin(cluster, ['users', 'rm', 'dora']);
      expect(removed.code).toBe(0);

      const asDora = await runKeyport(['admin', 'get', 'cap'], { home: home('dora') });
      expect(asDora.code).toBe(EXIT.accessDenied);
      expect(asDora.stderr).toContain('ERROR: User "dora" no longer exists on this cluster.');
      await expect(api.user.getStatus({})).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
        message: expect.stringContaining('no longer exists'),
      });
    } finally {
      api.close();
    }
    expect((await runAdmin(cluster, ['get', 'user/dora'])).code).toBe(EXIT.notFound);
    expect(await auditOf(cluster, 'user.delete', 'keyport-admin')).toContainEqual(
      expect.objectContaining({ success: true }),
    );
  });

  it("stops a locked user's existing certificate until the user is unlocked", async ({ expect }) => {
    expect((await loginAs(cluster, 'liam')).code).toBe(0);
    const locked = await runAdmin(cluster, ['users', 'lock', 'liam', '--reason', 'lost laptop']);
    expect(locked.code).toBe(0);
    const files = await filesUnder(home('liam'));

    const asLiam = await runKeyport(['admin', 'get', 'cap'], { home: home('liam') });
    expect(asLiam.code).toBe(EXIT.locked);
    expect(asLiam.stderr).toContain('ERROR: User "liam" is locked until an admin unlocks it.');
    const api = await connectWithProfile(cluster, 'liam');
    try {
      await expect(api.user.ping({})).rejects.toMatchObject({ code: 'LOCKED' });
    } finally {
      api.close();
    }
    expect(await filesUnder(home('liam'))).toEqual(files);
    expect((await storedUser(cluster, 'liam')).resource.status.lock_reason).toBe('lost laptop');

    expect((await runAdmin(cluster, ['users', 'unlock', 'liam'])).code).toBe(0);
    const afterUnlock = await runKeyport(['admin', 'get', 'cap'], { home: home('liam') });
    expect(afterUnlock.code).toBe(0);
    expect(afterUnlock.stdout).toMatch(/kind: cluster_auth_preference/);
  });

  it("caps the requested TTL at the role's max_session_ttl", async ({ expect }) => {
    const login = await loginAs(cluster, 'tess', ['--ttl', '5h']);
    const loggedInAt = Date.now();
    expect(login.code).toBe(0);

    const profile = await readProfile(cluster, 'tess');
    expect(profile.expiresMs - loggedInAt).toBeGreaterThan(3600_000 - 60_000);
    expect(profile.expiresMs - loggedInAt).toBeLessThanOrEqual(3600_000);
    const certificate = new X509Certificate(profile.tlsCertPem);
    expect(Date.parse(certificate.validTo) - loggedInAt).toBeLessThanOrEqual(3600_000);
    expect(Date.parse(certificate.validTo) - loggedInAt).toBeGreaterThan(3600_000 - 60_000);

    const status = await runKeyport(['status'], { home: home('tess') });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/Roles\s+access, short-sessions/);
    expect(status.stdout).toMatch(/valid for (59m|1h0m)\]/);
  });
});

// Independent users and clusters: these run side by side, to keep the file fast.
describe.concurrent('cluster trust', () => {
  it('refuses a cluster whose CA does not match --ca-pin, loudly, and saves nothing', async ({ expect }) => {
    const probeHome = join(homes, 'pin-probe');
    const refused = await runKeyport(
      [
        'login',
        '--cluster',
        strict.address,
        '--user',
        'sam',
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
        '--keystore',
        'file',
      ],
      { home: probeHome, input: [(people.sam as SignedUpUser).password] },
    );
    expect(refused.code).toBe(EXIT.unreachable);
    expect(refused.stderr).toContain(`WARNING: the CA of ${strict.address} does not match the pin you gave.`);
    expect(refused.stderr).toContain(`given:     ${cluster.caPin}`);
    expect(refused.stderr).toContain(`presented: ${strict.caPin}`);
    expect(await filesUnder(probeHome)).toEqual({});
  });

  it('refuses a changed CA at a trusted address and keeps the stored trust', async ({ expect }) => {
    const pat = people.pat as SignedUpUser;
    expect((await loginAs(doomed, 'pat')).code).toBe(0);
    const files = await filesUnder(home('pat'));
    const { address, port, caPin } = doomed;
    await doomed.stop();
    // Same address, fresh data dir: a new CA (a rebuilt cluster, or someone in the middle).
    doomed = await startLabCluster({ clusterName: 'rebuilt', listen: `127.0.0.1:${port}` });
    expect(doomed.address).toBe(address);
    expect(doomed.caPin).not.toBe(caPin);

    // No --ca-pin: the pin stored at the first login is what the new CA is checked against.
    const relogin = await runKeyport(
      ['login', '--cluster', address, '--user', 'pat', '--password-stdin', '--keystore', 'file'],
      { home: home('pat'), input: [pat.password, nextTotpCode(pat.totpSecret)] },
    );
    expect(relogin.code).toBe(EXIT.unreachable);
    expect(relogin.stderr).toContain(`WARNING: the CA of ${address} has changed.`);
    expect(relogin.stderr).toContain(`trusted:   ${caPin}`);
    expect(relogin.stderr).toContain(`presented: ${doomed.caPin}`);

    // The existing session's calls are refused the same way.
    const call = await runKeyport(['admin', 'users', 'ls'], { home: home('pat') });
    expect(call.code).toBe(EXIT.unreachable);
    expect(call.stderr).toContain(`WARNING: the CA of ${address} has changed.`);

    expect(await filesUnder(home('pat'))).toEqual(files);
    // The password never reached the new cluster.
    expect(await auditOf(doomed, 'user.login', 'pat')).toEqual([]);
  });

  it('saves nothing when the person does not trust the CA on first use', async ({ expect }) => {
    const tofuHome = join(homes, 'tofu-no');
    const refused = await runKeyport(
      ['login', '--cluster', cluster.address, '--user', 'wanda', '--password-stdin', '--keystore', 'file'],
      { home: tofuHome, input: ['no', (people.wanda as SignedUpUser).password] },
    );
    expect(refused.code).toBe(EXIT.cancelled);
    expect(refused.stderr).toContain(`CA pin: ${cluster.caPin}`);
    expect(refused.stderr).toContain('Trust this cluster? (yes/no)');
    expect(refused.stderr).toContain('ERROR: The cluster CA was not trusted; nothing was saved.');
    expect(await filesUnder(tofuHome)).toEqual({});
  });
});
