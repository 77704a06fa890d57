// The CLI's relogin for an SSO session (issues 13 and 16), with real processes: `keyport login --auth=lab`,
// then the lab clock past the session's end, then `keyport mfa ls` without Keyport Connect. It runs the SSO
// login again (KEYPORT_BROWSER=none prints the IdP's URL; LabBrowser is the person's browser) instead of
// asking for a password, and the command goes on. The IdP signing in someone else is refused, with
// KEYPORT_HOME byte for byte as it was. With Keyport Connect running (its backend in this process, on the
// relogin socket), the CLI asks the app, whose prompt offers "Sign in with Lab IdP" and opens the browser.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../client/profiles';
import { keyportCliPath, repoRoot } from '../lab/cluster';
import { folderSnapshot } from '../lab/folder-snapshot';
import { LabBrowser } from '../lab/oidc/browser';
import { ssoCliLogin, startSsoLab } from '../lab/oidc/sso-lab';
import type { SsoLab } from '../lab/oidc/sso-lab';
import { followCallback } from '../lab/oidc/sso-login';
import { createBackend } from '../main/backend/backend';
import type { Prompt } from '../preload/contract';
import { listenForReloginRequests } from '../main/backend/relogin-socket';

const ALICE = 'alice@keyport.lab';

let lab: SsoLab;
let home: string;
let profiles: ProfileStore;

/** The person's browser at the IdP (as `user`), keyport-auth's callback, then the client's loopback page. */
async function browse(url: string, user: string): Promise<void> {
  const { callbackUrl } = await new LabBrowser(lab.idp.caPem).signIn(
    url,
    { username: user, password: `${user}-lab-password` },
    lab.redirectUri,
  );
  const callback = callbackUrl ? await followCallback(lab.cluster, callbackUrl) : undefined;
  if (callback?.location) await fetch(callback.location).then((response) => response.text());
}

/** `keyport ARGS` in `home`, as `user` at the IdP when it prints a sign-in URL. */
async function keyportAs(user: string, args: string[]) {
  const child = spawn(process.execPath, [keyportCliPath, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...lab.clock.env, KEYPORT_HOME: home, KEYPORT_BROWSER: 'none' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  if (url !== undefined) await browse(url, user);
  return { code: await exited, stdout, stderr, url };
}

async function expireSession(): Promise<void> {
  const profile = await profiles.getProfile();
  if (!profile) throw new Error('not signed in');
  lab.clock.advance(Math.max(0, profile.expiresMs - lab.clock.now()) + 60_000);
}

beforeAll(async () => {
  lab = await startSsoLab({
    clusterName: 'sso-relogin-cli',
    authentication: ['    type: local', '    second_factor: "off"'],
  });
  // The IdP's clock agrees with the cluster's: its ID tokens' times move with the lab clock.
  lab.idp.rewriteIdTokens((claims) => {
    const skew = Math.round((lab.clock.now() - Date.now()) / 1000);
    const shifted = { ...claims };
    for (const name of ['iat', 'exp', 'auth_time']) {
      if (typeof claims[name] === 'number') shifted[name] = claims[name] + skew;
    }
    return shifted;
  });
  home = join(lab.work, 'home');
  profiles = new ProfileStore(home);
  const login = await ssoCliLogin(lab, { home, user: 'alice' });
  expect(login.code, login.stderr).toBe(0);
  expect(await profiles.getProfile()).toMatchObject({ user: ALICE, ssoConnector: 'lab' });
}, 180_000);

afterAll(async () => {
  await lab?.stop();
});

describe('keyport on an expired SSO session, without Keyport Connect', () => {
  it('refuses a relogin as someone else at the IdP, KEYPORT_HOME byte for byte as it was', async () => {
    await expireSession();
    const before = await folderSnapshot(home);
    const run = await keyportAs('bob', ['mfa', 'ls']);
    expect(run.url).toBeDefined();
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`signed you in as bob@keyport.lab, not ${ALICE}`);
    expect(run.stderr).not.toMatch(/password/i);
    expect(await folderSnapshot(home)).toEqual(before);
  });

  it('runs keyport login --auth=lab again (the URL printed, no password asked), and the command goes on', async () => {
    const old = await profiles.getProfile();
    const run = await keyportAs('alice', ['mfa', 'ls']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('keyport login --auth=lab');
    expect(run.stderr).toContain('Open this URL in a browser on this machine to sign in:');
    expect(run.stderr).not.toMatch(/Enter password/);
    const renewed = await profiles.getProfile();
    expect(renewed).toMatchObject({ user: ALICE, ssoConnector: 'lab' });
    expect(renewed!.expiresMs).toBeGreaterThan(old!.expiresMs);
    expect(renewed!.expiresMs).toBeGreaterThan(lab.clock.now());
  });
});

describe('keyport on an expired SSO session, with Keyport Connect running', () => {
  it('asks the app, whose prompt offers Sign in with Lab IdP and opens the browser; the command goes on', async () => {
    const shown: Prompt[] = [];
    const opened: string[] = [];
    Object.assign(process.env, lab.clock.env);
    const backend = createBackend({
      profiles: new ProfileStore(home),
      keystoreKind: 'file',
      env: {},
      watchProfiles: false,
      clock: lab.clock.now,
      sessionNotices: { tickMs: 0 },
      openInBrowser: async (url) => {
        opened.push(url);
        void browse(url, 'alice');
      },
    });
    backend.on('onPrompt', (prompt) => {
      shown.push(prompt);
      if (prompt.kind === 'relogin') {
        void backend.handlers['prompts.answer']({ id: prompt.id, value: { kind: 'relogin', sso: true } });
      }
    });
    const socket = await listenForReloginRequests(home, backend.relogin);
    try {
      await expireSession();
      const old = await profiles.getProfile();
      const run = await keyportAs('nobody', ['mfa', 'ls']);
      expect(run.code, run.stderr).toBe(0);
      // The CLI printed no URL of its own: the app opened the browser.
      expect(run.url).toBeUndefined();
      expect(run.stderr).toContain('again in Keyport Connect');
      expect(opened).toHaveLength(1);
      expect(shown.find((p) => p.kind === 'relogin')).toMatchObject({
        cause: 'cli',
        user: ALICE,
        sso: { connector: 'lab', display: 'Lab IdP' },
      });
      expect(shown.some((p) => p.kind === 'browserSignIn')).toBe(true);
      const renewed = await profiles.getProfile();
      expect(renewed).toMatchObject({ user: ALICE, ssoConnector: 'lab' });
      expect(renewed!.expiresMs).toBeGreaterThan(old!.expiresMs);
    } finally {
      await socket.close();
      await backend.close();
      for (const name of Object.keys(lab.clock.env)) delete process.env[name];
    }
  });
});
