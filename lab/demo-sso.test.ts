// The demo's SSO (lab/demo-sso.ts) against a real keyport-auth: the connector it registers loads (and loads
// again at the next start), maps the lab users' groups as the banner says, and the app's backend signs alice
// and bob in through it; carol is denied. Without a display the opener prints the IdP's URL, which the
// test's browser (LabBrowser) then follows, as a person would in a browser on the machine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ProfileStore } from '../client/profiles';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { startLabCluster } from './cluster';
import type { LabCluster } from './cluster';
import { DEMO_CONNECTOR, startDemoSso } from './demo-sso';
import type { DemoSso } from './demo-sso';
import { LabBrowser } from './oidc/browser';
import { followCallback, freePort } from './oidc/sso-login';

let work: string;
let sso: DemoSso;
let cluster: LabCluster;
let backend: Backend;
let redirectUri: string;
const fallback: string[] = [];
const display = process.env.DISPLAY;
const wayland = process.env.WAYLAND_DISPLAY;

beforeAll(async () => {
  delete process.env.DISPLAY;
  delete process.env.WAYLAND_DISPLAY;
  work = await mkdtemp(join(tmpdir(), 'keyport-demo-sso-'));
  const webPort = await freePort();
  redirectUri = `https://localhost:${webPort}/v1/webapi/oidc/callback`;
  sso = await startDemoSso({ demoDir: work, webPorts: [webPort, await freePort()] });
  cluster = await startLabCluster({
    clusterName: 'demo-sso',
    configYaml: `auth_service:\n  oidc_ca_file: ${sso.caFile}\n  authentication:\n    type: local\n    second_factor: "off"\n`,
    extraArgs: ['--web-listen', `127.0.0.1:${webPort}`],
  });
  await sso.register(cluster);
  backend = createBackend({
    profiles: new ProfileStore(join(work, 'home')),
    keystoreKind: 'file',
    env: {},
    watchProfiles: false,
    openInBrowser: sso.opener(cluster, async (url) => void fallback.push(url)),
  });
  const trusted = await backend.handlers['clusters.add']({ address: cluster.address, caPin: cluster.caPin });
  expect(trusted.ok).toBe(true);
}, 120_000);

afterAll(async () => {
  if (display !== undefined) process.env.DISPLAY = display;
  if (wayland !== undefined) process.env.WAYLAND_DISPLAY = wayland;
  await backend?.close();
  await cluster?.stop();
  await sso?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** An SSO login in the app as `user`: the printed URL followed by a browser on this machine. */
async function loginAs(user: string) {
  const printed: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((line: unknown) => void printed.push(String(line)));
  let browsing: Promise<unknown> | undefined;
  const stop = backend.on('onPrompt', (prompt) => {
    if (prompt.kind !== 'browserSignIn') return;
    stop();
    // The opener printed the URL before it returned; the person opens it.
    browsing = (async () => {
      // The prompt shows as the opener starts; the URL is printed right after.
      const printedUrl = () =>
        printed.map((line) => line.trim()).find((line) => line.startsWith(sso.idp.issuer));
      for (let i = 0; i < 200 && printedUrl() === undefined; i++) await new Promise((r) => setTimeout(r, 50));
      const url = printedUrl();
      if (url === undefined) throw new Error(`no URL printed: ${printed.join(' | ')}`);
      const { callbackUrl } = await new LabBrowser(sso.idp.caPem).signIn(
        url,
        { username: user, password: `${user}-lab-password` },
        redirectUri,
      );
      const callback = await followCallback(cluster, callbackUrl!);
      return (await fetch(callback.location!)).text();
    })();
  });
  try {
    const result = await backend.handlers['auth.loginSso']({
      address: cluster.address,
      connector: DEMO_CONNECTOR,
    });
    return { result, tab: await browsing, printed };
  } finally {
    stop();
    log.mockRestore();
  }
}

describe("the demo's SSO: the lab IdP and its connector", () => {
  it('is listed as "Lab IdP", and registers again at the next start', async () => {
    expect(await backend.handlers['auth.connectors']({ address: cluster.address })).toEqual({
      ok: true,
      value: [{ name: 'lab-idp', display: 'Lab IdP' }],
    });
    await sso.register(cluster);
  });

  it('signs alice in with the roles the banner gives her group (admins → access, editor)', async () => {
    const { result, tab, printed } = await loginAs('alice');
    expect(printed[0]).toBe('Sign in with Lab IdP: open this URL in a browser on this machine:');
    expect(result.ok, JSON.stringify(result)).toBe(true);
    if (!result.ok) return;
    expect(result.value.user).toBe('alice@keyport.lab');
    expect([...result.value.roles].sort()).toEqual(['access', 'editor']);
    expect(tab).toContain('Signed in to demo-sso. You can close this tab.');
  });

  it('maps bob (team-dev) to access and denies carol (contractors)', async () => {
    const bob = await loginAs('bob');
    expect(bob.result.ok && bob.result.value.roles).toEqual(['access']);
    const carol = await loginAs('carol');
    expect(carol.result).toMatchObject({ ok: false, error: { code: 'ACCESS_DENIED' } });
  });

  it('names the lab users, their passwords and roles in the banner', () => {
    const banner = sso.bannerLines().join('\n');
    expect(banner).toContain(
      `"Sign in with Lab IdP" (oidc connector lab-idp), a lab OpenID Provider at ${sso.idp.issuer}`,
    );
    expect(banner).toContain('alice / alice-lab-password: admins, team-platform → access, editor');
    expect(banner).toContain('carol / carol-lab-password: contractors → no role: denied');
  });

  it("hands every other URL (the web-session approval's confirm URL) to the fallback opener", async () => {
    const confirm = `${cluster.webOrigin}/web/device/confirm?id=a&token=b`;
    await sso.opener(cluster, async (url) => void fallback.push(url))(confirm);
    expect(fallback).toEqual([confirm]);
  });
});
