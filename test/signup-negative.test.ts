// Signup refused, through a real keyport-auth and the real `keyport signup` (issue 2, "What must be
// shown": an expired or reused signup token; docs/architecture.md invariants 5 and 6). Each refusal asserts
// the typed error (the CLI's exit code from cli/exit-codes.ts and a clear message) and that nothing stored
// changed: the token is spent only by a signup that succeeds, and a refused one sets no password and
// registers no device.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../auth/tokens';
import { totpCode } from '../auth/totp';
import { EXIT } from '../cli/exit-codes';
import { connectCluster } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import {
  connectAsAdmin,
  openClusterDb,
  repoRoot,
  runAdmin,
  runKeyport,
  startLabCluster,
} from '../lab/cluster';
import type { CliResult, LabCluster } from '../lab/cluster';

let cluster: LabCluster;
let homes: string;

beforeAll(async () => {
  [cluster, homes] = await Promise.all([
    startLabCluster({ clusterName: 'signup-negative' }),
    mkdtemp(join(tmpdir(), 'keyport-signup-negative-')),
  ]);
});

afterAll(async () => {
  await cluster?.stop();
  await rm(homes, { recursive: true, force: true });
});

const home = (name: string) => join(homes, name);

/** `keyport admin users add`: the one-time signup token it prints. */
async function addUser(name: string): Promise<string> {
  const added = await runAdmin(cluster, ['users', 'add', name, '--roles', 'access', '--logins', name]);
  const token = /signup token: (\S+)/.exec(added.stdout)?.[1];
  if (added.code !== 0 || !token) throw new Error(`users add failed: ${added.stderr}${added.stdout}`);
  return token;
}

interface SignupAnswers {
  password: string;
  /** The OTP code to answer with, given the secret the CLI showed. */
  otpCode(secret: string): string;
}

interface SignupRun extends CliResult {
  /** The OTP secret the CLI showed ('' when it failed before showing one). */
  secret: string;
}

/**
 * `keyport signup` as a person at a pipe would run it: each prompt is answered when it appears on stderr
 * (modelled on lab/cluster.ts signUpWithToken, with the answers chosen by the test).
 */
function runSignup(name: string, token: string, answers: SignupAnswers): Promise<SignupRun> {
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin/keyport.mjs'),
      'signup',
      '--cluster',
      cluster.address,
      '--token',
      token,
      '--ca-pin',
      cluster.caPin,
    ],
    { cwd: repoRoot, env: { ...process.env, KEYPORT_HOME: home(name) }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  let secret = '';
  let passwordSent = false;
  child.stdin.on('error', () => {}); // the CLI may exit before it reads an answer
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (!passwordSent && /Choose a password/.test(stderr)) {
      passwordSent = true;
      child.stdin.write(`${answers.password}\n`);
    }
    const shown = /secret: ([A-Z2-7]+)/.exec(stderr)?.[1];
    if (shown && !secret && /Enter the code/.test(stderr)) {
      secret = shown;
      child.stdin.end(`${answers.otpCode(secret)}\n`);
    }
  });
  return new Promise((resolveRun, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keyport signup timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr, secret });
    });
  });
}

const currentCode = (secret: string) => totpCode(secret, Date.now());

/** A six-digit code that matches none of the steps the server could accept around now. */
function wrongCode(secret: string): string {
  const near = new Set([-3, -2, -1, 0, 1, 2, 3].map((k) => totpCode(secret, Date.now() + k * 30_000)));
  for (let n = 500_000; ; n++) {
    const code = String((Number(currentCode(secret)) + n) % 1_000_000).padStart(6, '0');
    if (!near.has(code)) return code;
  }
}

/** What the cluster stores for a user and its signup token, straight from its database. */
function stored(name: string, token: string) {
  const db = openClusterDb(cluster);
  try {
    return {
      user: db.prepare('select * from users where name = ?').get(name) as
        { password_hash: string | null; locked_until_ms: number | null; updated_ms: number } | undefined,
      devices: db.prepare('select * from mfa_devices where user = ? order by id').all(name),
      token: db
        .prepare('select user, used, expires_ms from signup_tokens where token_hash = ?')
        .get(hashToken(token)) as { user: string; used: number; expires_ms: number } | undefined,
      tokens: (db.prepare('select count(*) as n from signup_tokens').get() as { n: number }).n,
      users: (db.prepare('select count(*) as n from users').get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}

/** The audit log's user.signup events for a user (read with the super-admin identity, in process). */
async function signupAudit(name: string): Promise<{ success: boolean; message: string }[]> {
  const admin = await connectAsAdmin(cluster);
  const { events } = await admin.admin
    .listAuditEvents({ sinceMs: 0, type: 'user.signup', limit: 0 })
    .finally(() => admin.close());
  return events.filter((event) => event.actor === name).map(({ success, message }) => ({ success, message }));
}

function login(name: string, password: string, otpCode: string): Promise<CliResult> {
  return runKeyport(
    [
      'login',
      '--cluster',
      cluster.address,
      '--user',
      name,
      '--ca-pin',
      cluster.caPin,
      '--password-stdin',
      '--keystore',
      'file',
    ],
    { home: home(name), input: [password, otpCode] },
  );
}

describe('signup tokens', () => {
  // First in the file: keyport-auth prunes expired tokens a minute after it starts, and a pruned token
  // reads as unknown ("invalid or was already used") rather than expired.
  it('refuses an expired signup token with EXPIRED and leaves the user without a password', async () => {
    const token = await addUser('eve');
    // A token lives an hour, and keyport-auth's clock cannot be moved from outside: move the token's
    // expiry into the past instead, in the database the running service uses (WAL allows this second
    // writer). To the service that is the same as the hour having passed.
    const db = openClusterDb(cluster, { readonly: false });
    try {
      const moved = db
        .prepare('update signup_tokens set expires_ms = 1 where token_hash = ?')
        .run(hashToken(token));
      expect(moved.changes).toBe(1);
    } finally {
      db.close();
    }
    const before = stored('eve', token);

    const refused = await runSignup('eve', token, { password: 'eve-password-123', otpCode: currentCode });
    expect(refused.code).toBe(EXIT.expired);
    expect(refused.stderr).toContain('ERROR: The signup token has expired; ask an admin for a new one.');
    expect(refused.stderr).not.toMatch(/Choose a password/);
    expect(stored('eve', token)).toEqual(before);
    expect(before.user?.password_hash).toBeNull();
  });

  it('refuses a signup token that was already used, and the first signup stands', async () => {
    const token = await addUser('ursula');
    const first = await runSignup('ursula', token, {
      password: 'ursula-password-123',
      otpCode: currentCode,
    });
    expect(first.stderr).not.toMatch(/ERROR/);
    expect(first.code).toBe(0);
    const before = stored('ursula', token);
    expect(before.token?.used).toBe(1);
    expect(before.devices).toHaveLength(1);

    const reused = await runSignup('ursula', token, {
      password: 'someone-else-password',
      otpCode: currentCode,
    });
    expect(reused.code).toBe(EXIT.accessDenied);
    expect(reused.stderr).toContain(
      'ERROR: The signup token is invalid or was already used; ask an admin for a new one.',
    );
    expect(reused.secret).toBe('');
    expect(stored('ursula', token)).toEqual(before);

    // CompleteSignup on its own spends the token atomically too: a client that skips StartSignup is
    // refused the same way.
    const trusted = JSON.parse(
      await readFile(join(home('ursula'), 'clusters', `127.0.0.1_${cluster.port}.json`), 'utf8'),
    ) as { caPem: string; caPin: string };
    const api = connectCluster({
      address: parseClusterAddress(cluster.address),
      caPem: trusted.caPem,
      caPin: trusted.caPin,
    });
    try {
      await expect(
        api.auth.completeSignup({ token, password: 'someone-else-password', newDevice: undefined }),
      ).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringContaining('already used') });
    } finally {
      api.close();
    }
    expect(stored('ursula', token)).toEqual(before);
    // Both refusals are audited: the CLI's StartSignup and the direct CompleteSignup.
    const refusal = {
      success: false,
      message: 'The signup token is invalid or was already used; ask an admin for a new one.',
    };
    expect(await signupAudit('ursula')).toEqual([{ success: true, message: 'signed up' }, refusal, refusal]);
  });

  it('refuses a garbage token with ACCESS_DENIED and stores nothing', async () => {
    const before = stored('nobody', 'not-a-signup-token');
    const refused = await runSignup('nobody', 'not-a-signup-token', {
      password: 'nobody-password-123',
      otpCode: currentCode,
    });
    expect(refused.code).toBe(EXIT.accessDenied);
    expect(refused.stderr).toContain(
      'ERROR: The signup token is invalid or was already used; ask an admin for a new one.',
    );
    const after = stored('nobody', 'not-a-signup-token');
    expect(after).toEqual(before);
    expect(after.user).toBeUndefined();
  });
});

describe('signup answers', () => {
  it('refuses a wrong TOTP code with MFA_FAILED without spending the token; the retry succeeds', async () => {
    const token = await addUser('wes');
    const before = stored('wes', token);

    const refused = await runSignup('wes', token, { password: 'wes-password-123', otpCode: wrongCode });
    expect(refused.code).toBe(EXIT.mfa);
    expect(refused.stderr).toContain(
      'ERROR: The OTP code is wrong; check the time on your device and try again.',
    );
    const after = stored('wes', token);
    expect(after.token?.used).toBe(0);
    expect(after.user?.password_hash).toBeNull();
    expect(after.devices).toEqual([]);
    expect(after.users).toBe(before.users);
    expect(await signupAudit('wes')).toEqual([
      { success: false, message: 'The OTP code is wrong; check the time on your device and try again.' },
    ]);

    // The password was not set: logging in with it fails as any wrong password does.
    const noPassword = await login('wes', 'wes-password-123', currentCode(refused.secret));
    expect(noPassword.code).toBe(EXIT.accessDenied);
    expect(noPassword.stderr).toContain('ERROR: Invalid user name or password.');

    // The same token still works, with the right code for the (new) secret shown this time.
    const retried = await runSignup('wes', token, { password: 'wes-password-123', otpCode: currentCode });
    expect(retried.stderr).not.toMatch(/ERROR/);
    expect(retried.code).toBe(0);
    expect(stored('wes', token).token?.used).toBe(1);
    const loggedIn = await login('wes', 'wes-password-123', totpCode(retried.secret, Date.now() + 30_000));
    expect(loggedIn.stderr).not.toMatch(/ERROR/);
    expect(loggedIn.code).toBe(0);
  });

  it('refuses a too-short password with INVALID_ARGUMENT naming the field, without spending the token', async () => {
    const token = await addUser('pia');
    const before = stored('pia', token);

    const refused = await runSignup('pia', token, { password: 'short', otpCode: currentCode });
    expect(refused.code).toBe(EXIT.invalidInput);
    expect(refused.stderr).toContain('ERROR: The password is too short: use at least 12 characters.');
    expect(refused.stderr).toMatch(/\bpassword\b/);

    const after = stored('pia', token);
    expect(after.token).toEqual(before.token);
    expect(after.token?.used).toBe(0);
    expect(after.user).toEqual(before.user);
    expect(after.user?.password_hash).toBeNull();
    expect(after.devices).toEqual([]);
  });
});
