// Login with the default keystore (the OS keychain) through the real CLI against a real keyport-auth and
// a private gnome-keyring: the session key lives in the Secret Service and nowhere else (docs/architecture.md
// invariant 2), logout and relogin leave no orphan entries, and a missing or locked keychain fails the
// login before any password or OTP code leaves the machine (issue 2, "Keys and profiles").
import { spawnSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import {
  loginUser,
  runAdmin,
  runKeyport,
  signUpUser,
  signUpWithToken,
  startLabCluster,
} from '../lab/cluster';
import type { CliResult, LabCluster, SignedUpUser } from '../lab/cluster';
import { startLabKeyring } from '../lab/keyring';
import type { LabKeyring } from '../lab/keyring';

// The attributes @napi-rs/keyring 2.1.2 gives a Secret Service item: service = KEYCHAIN_SERVICE,
// username = the key id. Spelled out here so a change in the library's layout shows up as a failure.
const SERVICE = 'keyport';

let cluster: LabCluster;
let keyring: LabKeyring;
let homes: string;
let kim: SignedUpUser;
let lou: SignedUpUser;

beforeAll(async () => {
  // Assigned as each comes up, so that afterAll stops whatever started even if another part failed.
  await Promise.all([
    startLabCluster({ clusterName: 'keychain' }).then((started) => (cluster = started)),
    startLabKeyring().then((started) => (keyring = started)),
    mkdtemp(join(tmpdir(), 'keyport-homes-')).then((dir) => (homes = dir)),
  ]);
  [kim, lou] = await Promise.all([
    signUpWithPreviousCode('kim', ['editor', 'access']),
    signUpUser(cluster, join(homes, 'lou'), 'lou', ['editor']),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all([cluster?.stop(), keyring?.stop()]);
  if (homes) await rm(homes, { recursive: true, force: true });
});

/** The CLI's environment: the lab keyring's bus and its HOME/XDG dirs, over the test runner's own. */
function keychainEnv(): Record<string, string | undefined> {
  return { ...keyring.env };
}

function profilePath(home: string): string {
  return join(home, 'profiles', `127.0.0.1_${cluster.port}.json`);
}

function readProfile(home: string): {
  keystore: string;
  keyId: string;
  user: string;
  tlsCertPem: string;
} {
  return JSON.parse(readFileSync(profilePath(home), 'utf8'));
}

const TOTP_STEP_MS = 30_000;

/**
 * Like signUpUser, but answers with the previous step's code (the server accepts one step of drift and
 * never a step at or before one already used). That leaves the current and the next step for two logins
 * in a row by the same person, with no wait for the clock.
 */
async function signUpWithPreviousCode(user: string, roles: string[]): Promise<SignedUpUser> {
  const password = `${user}-password-123`;
  const added = await runAdmin(cluster, ['users', 'add', user, '--roles', roles.join(','), '--logins', user]);
  const token = /signup token: (\S+)/.exec(added.stdout)?.[1];
  if (added.code !== 0 || !token) throw new Error(`users add failed: ${added.stderr}${added.stdout}`);
  const secret = await signUpWithToken(cluster, join(homes, user), token, password, -TOTP_STEP_MS);
  return { user, password, totpSecret: secret };
}

/** `keyport login` with the default keystore, password and the given OTP code on stdin. */
function loginWithCode(
  home: string,
  person: SignedUpUser,
  code: string,
  env: Record<string, string | undefined>,
): Promise<CliResult> {
  return loginUser(cluster, home, person, [], env, code);
}

/** Key ids (the `username` attribute) of every keyport item in the Secret Service, locked or not. */
function keychainKeyIds(): string[] {
  // secret-tool (libsecret 0.20) prints label and secret on stdout, the attributes on stderr.
  const search = spawnSync('secret-tool', ['search', '--all', 'service', SERVICE], {
    env: { PATH: process.env.PATH, ...keyring.env },
    encoding: 'utf8',
  });
  expect(search.status, search.stderr).toBe(0);
  const listing = `${search.stdout}\n${search.stderr}`;
  return [...listing.matchAll(/^attribute\.username = (.*)$/gm)].map((match) => match[1] as string).sort();
}

/** The secret of one item, read by libsecret's own client; undefined when there is no such item. */
function keychainSecret(keyId: string): string | undefined {
  const lookup = spawnSync('secret-tool', ['lookup', 'service', SERVICE, 'username', keyId], {
    env: { PATH: process.env.PATH, ...keyring.env },
    encoding: 'utf8',
  });
  if (lookup.status === 1 && lookup.stdout === '') return undefined;
  expect(lookup.status, lookup.stderr).toBe(0);
  return lookup.stdout;
}

function keyIdsOf(user: string): string[] {
  return keychainKeyIds().filter((id) => id.startsWith(`${cluster.address}/${user}/`));
}

/** The stored private key is the one the certificate was issued for. */
function expectKeyMatchesCertificate(privateKeyPem: string, tlsCertPem: string): void {
  const fromKey = createPublicKey(privateKeyPem).export({ format: 'der', type: 'spki' });
  const fromCert = new X509Certificate(tlsCertPem).publicKey.export({ format: 'der', type: 'spki' });
  expect(Buffer.compare(fromKey, fromCert)).toBe(0);
}

function regularFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

function expectNoPlaintextKey(privateKeyPem: string, dirs: string[]): void {
  const der = Buffer.from(privateKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const bodyLines = privateKeyPem.split('\n').filter((line) => line && !line.startsWith('-----'));
  expect(bodyLines.length).toBeGreaterThan(0);
  const files = dirs.flatMap(regularFilesUnder);
  expect(files.length).toBeGreaterThan(0);
  for (const file of files) {
    const content = readFileSync(file);
    expect(content.includes(der), `${file} holds the DER key`).toBe(false);
    expect(content.includes('PRIVATE KEY'), `${file} holds a PEM private key`).toBe(false);
    for (const line of bodyLines) expect(content.includes(line), `${file} holds the PEM body`).toBe(false);
  }
}

interface AuditEvent {
  type: string;
  actor: string;
  success: boolean;
  message: string;
}

async function loginEventsOf(user: string): Promise<AuditEvent[]> {
  const audit = await runAdmin(cluster, ['audit', '--json', '--type', 'user.login']);
  expect(audit.code, audit.stderr).toBe(0);
  return audit.stdout
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((event) => event.type === 'user.login' && event.actor === user);
}

// One keyring for the whole file, locked only in the last test: a lab keyring cannot be unlocked again.
describe('keyport login with the OS keychain (default keystore)', () => {
  let kimHome: string;
  let firstKeyId: string;

  it('stores the session key in the Secret Service, and only there', async () => {
    kimHome = join(homes, 'kim');
    // The current step's code, so that the relogin below can use the next step's.
    const login = await loginWithCode(kimHome, kim, totpCode(kim.totpSecret, Date.now()), keychainEnv());
    expect(login.stderr).not.toMatch(/ERROR/);
    expect(login.code).toBe(0);
    expect(login.stdout).toMatch(/Key stored in\s+OS keychain/);

    const profile = readProfile(kimHome);
    expect(profile.keystore).toBe('keychain');
    expect(profile.user).toBe('kim');
    expect(profile.keyId).toMatch(new RegExp(`^${cluster.address}/kim/[0-9a-f]{12}$`));
    expect(readFileSync(profilePath(kimHome), 'utf8')).not.toContain('PRIVATE KEY');
    firstKeyId = profile.keyId;

    // Read back from outside the CLI, by libsecret's own client.
    expect(keyIdsOf('kim')).toEqual([firstKeyId]);
    const privateKeyPem = keychainSecret(firstKeyId);
    expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    expectKeyMatchesCertificate(privateKeyPem as string, profile.tlsCertPem);

    // No file keystore was used on the side, and no file holds the key in plaintext: neither the profile
    // dir nor the keyring's HOME (whose login.keyring is encrypted with the keyring password).
    expect(existsSync(join(kimHome, 'keys'))).toBe(false);
    expect(regularFilesUnder(keyring.homeDir)).toContain(
      join(keyring.env.XDG_DATA_HOME, 'keyrings', 'login.keyring'),
    );
    expectNoPlaintextKey(privateKeyPem as string, [kimHome, keyring.homeDir, keyring.env.XDG_RUNTIME_DIR]);
  });

  it('signs authenticated calls with the key read from the keychain', async () => {
    const asEditor = await runKeyport(['admin', 'get', 'cap'], { home: kimHome, env: keychainEnv() });
    expect(asEditor.stderr).not.toMatch(/ERROR/);
    expect(asEditor.code).toBe(0);
    expect(asEditor.stdout).toMatch(/kind: cluster_auth_preference/);

    // The same call with no keychain reachable cannot find the key anywhere else.
    const noBus = await runKeyport(['admin', 'get', 'cap'], {
      home: kimHome,
      env: { ...keychainEnv(), DBUS_SESSION_BUS_ADDRESS: undefined },
    });
    expect(noBus.code).toBe(8);
    expect(noBus.stderr).toMatch(/No OS keychain is reachable/);
  });

  it('replaces the session key on a second login and deletes the previous entry', async () => {
    const relogin = await loginUser(cluster, kimHome, kim, [], keychainEnv());
    expect(relogin.stderr).not.toMatch(/ERROR/);
    expect(relogin.code).toBe(0);

    const profile = readProfile(kimHome);
    expect(profile.keystore).toBe('keychain');
    expect(profile.keyId).not.toBe(firstKeyId);
    expect(keyIdsOf('kim')).toEqual([profile.keyId]);
    expect(keychainSecret(firstKeyId)).toBeUndefined();
    expectKeyMatchesCertificate(keychainSecret(profile.keyId) as string, profile.tlsCertPem);

    const call = await runKeyport(['admin', 'get', 'cap'], { home: kimHome, env: keychainEnv() });
    expect(call.code).toBe(0);
  });

  it('removes the keychain entry and the profile on logout, and keeps the trusted CA', async () => {
    const { keyId } = readProfile(kimHome);
    const clusterFile = join(kimHome, 'clusters', `127.0.0.1_${cluster.port}.json`);
    const trustedBefore = readFileSync(clusterFile, 'utf8');

    const logout = await runKeyport(['logout'], { home: kimHome, env: keychainEnv() });
    expect(logout.stderr).toBe('');
    expect(logout.code).toBe(0);
    expect(logout.stdout).toMatch(/Logged out kim from 127\.0\.0\.1:\d+/);

    expect(keychainSecret(keyId)).toBeUndefined();
    expect(keyIdsOf('kim')).toEqual([]);
    expect(existsSync(profilePath(kimHome))).toBe(false);
    expect(existsSync(join(kimHome, 'profiles', `127.0.0.1_${cluster.port}-cert.pub`))).toBe(false);
    expect(existsSync(join(kimHome, 'current'))).toBe(false);
    expect(readFileSync(clusterFile, 'utf8')).toBe(trustedBefore);

    // Signed out: "Not signed in", with the one code every command gives it (exit 3).
    const status = await runKeyport(['status'], { home: kimHome, env: keychainEnv() });
    expect(status.code).toBe(3);
    expect(status.stderr).toContain('ERROR: Not signed in: run `keyport login`.');
  });

  it('fails with no session bus before any password is sent, and writes no profile', async () => {
    const louHome = join(homes, 'lou');
    const eventsBefore = await loginEventsOf('lou');
    const keyIdsBefore = keychainKeyIds();

    const noBusEnvs: Record<string, Record<string, string | undefined>> = {
      unset: { ...keychainEnv(), DBUS_SESSION_BUS_ADDRESS: undefined },
      'nothing listening': {
        ...keychainEnv(),
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(homes, 'no-such-bus')}`,
      },
    };
    for (const [label, env] of Object.entries(noBusEnvs)) {
      const login = await loginUser(cluster, louHome, lou, [], env);
      expect(login.code, `${label}: ${login.stderr}`).toBe(8);
      expect(login.stderr).toMatch(/^ERROR: No OS keychain is reachable/);
      expect(login.stderr).toMatch(/--keystore file/);
      expect(login.stdout).toBe('');
    }

    expect(await loginEventsOf('lou')).toEqual(eventsBefore);
    expect(existsSync(join(louHome, 'profiles'))).toBe(false);
    expect(existsSync(join(louHome, 'current'))).toBe(false);
    expect(existsSync(join(louHome, 'keys'))).toBe(false);
    expect(keychainKeyIds()).toEqual(keyIdsBefore);

    // The same credentials work once the keychain is reachable: the refusal was about the keychain alone.
    const login = await loginUser(cluster, louHome, lou, [], keychainEnv());
    expect(login.stderr).not.toMatch(/ERROR/);
    expect(login.code).toBe(0);
    expect(keyIdsOf('lou')).toEqual([readProfile(louHome).keyId]);
  });

  // Last: the lab keyring cannot be unlocked again.
  it('fails with a locked keychain, leaves the profile as it was and sends nothing', async () => {
    const louHome = join(homes, 'lou');
    const profileBefore = readFileSync(profilePath(louHome), 'utf8');
    const currentBefore = readFileSync(join(louHome, 'current'), 'utf8');
    const eventsBefore = await loginEventsOf('lou');
    const keyIdsBefore = keychainKeyIds();

    await keyring.lock();
    const login = await loginUser(cluster, louHome, lou, [], keychainEnv());
    expect(login.code, login.stderr).toBe(8);
    expect(login.stderr).toMatch(/^ERROR: The OS keychain is locked\./);
    expect(login.stderr).toMatch(/--keystore file/);

    // Using the existing session needs the key too: a clear error, not "not found".
    const call = await runKeyport(['admin', 'get', 'cap'], { home: louHome, env: keychainEnv() });
    expect(call.code).toBe(8);
    expect(call.stderr).toMatch(/locked/);

    expect(readFileSync(profilePath(louHome), 'utf8')).toBe(profileBefore);
    expect(readFileSync(join(louHome, 'current'), 'utf8')).toBe(currentBefore);
    expect(existsSync(join(louHome, 'keys'))).toBe(false);
    expect(await loginEventsOf('lou')).toEqual(eventsBefore);
    // Attributes stay searchable while locked: no entry was added or removed.
    expect(keychainKeyIds()).toEqual(keyIdsBefore);
    expect(await keyring.isLocked()).toBe(true);
  });
});
