// Keyport Connect's terminal, end to end: the built renderer in Debian's Chromium (playwright-core) through
// the browser host and the real backend, a real keyport-auth with WebAuthn and the seed's per-session MFA
// role, the lab security key, and a real sshd node whose AuthorizedPrincipalsCommand is keyport-node. The
// person opens Servers, connects to the production node, taps the key in the app's own prompt (which names
// login@node), types `echo hello-keyport` into xterm.js and sees the output; a second tab to a node whose
// host certificate is not from the cluster says why it was refused. Screenshots go to
// test-results/connect-terminal-e2e/, and axe checks every step.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../client/profiles';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { startBrowserHost } from '../main/browser/host';
import type { BrowserHost } from '../main/browser/host';
import { launchLabChromium } from '../lab/chromium';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { openClusterDb, repoRoot, runAdmin, runKeyport, startLabCluster } from '../lab/cluster';
import type { CliResult, LabCluster } from '../lab/cluster';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';
import { ensureLabAccounts, labNodeCommand, rogueHostCertificate, startLabNode } from '../lab/sshd';
import type { LabSshd, NodeCommand } from '../lab/sshd';

const shots = join(repoRoot, 'test-results', 'connect-terminal-e2e');
const ROLES_YAML = `kind: role
version: v7
metadata:
  name: access-dev
spec:
  allow:
    node_labels:
      env: dev
    logins:
      - jerry
---
kind: role
version: v7
metadata:
  name: access-prod
spec:
  options:
    require_session_mfa: true
  allow:
    node_labels:
      env: prod
    logins:
      - jerry
`;
const PASSWORD = 'jerry-password-123';

let work: string;
let clock: LabClock;
let cluster: LabCluster;
let key: SoftKey;
let nodeCommand: NodeCommand;
const sshds: LabSshd[] = [];
let backend: Backend;
let host: BrowserHost;
let browser: Browser;
let page: Page;
/** Touches the lab key by itself while true (the CLI's signup and login); the terminal's touch is the test's. */
let autoTouch = true;
const csp: string[] = [];

const screenshot = screenshotter(() => page, shots);
const button = (name: string) => page.getByRole('button', { name, exact: true });
const home = () => join(work, 'home');

function cli(args: string[], input: string[] = []): Promise<CliResult> {
  return runKeyport(args, {
    home: home(),
    input,
    env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath, ...clock.env },
    timeoutMs: 60_000,
  });
}

function spentCertificates(): number {
  const db = openClusterDb(cluster);
  try {
    return (
      db.prepare('SELECT count(*) AS n FROM session_certificates WHERE connection IS NOT NULL').get() as {
        n: number;
      }
    ).n;
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-terminal-e2e-'));
  clock = createLabClock();
  ensureLabAccounts(['jerry']);
  nodeCommand = await labNodeCommand(clock.env);
  cluster = await startLabCluster({
    clusterName: 'terminal-e2e',
    env: clock.env,
    configYaml: [
      'auth_service:',
      '  public_addr: localhost:0',
      '  authentication:',
      '    type: local',
      '    second_factors: [webauthn]',
      '    webauthn:',
      '      rp_id: localhost',
      '',
    ].join('\n'),
  });
  key = await startSoftKey({
    socketPath: join(work, 'key.sock'),
    statePath: join(work, 'key.json'),
    touch: 'manual',
    manualTouchTimeoutMs: 120_000,
  });
  key.events.on('up-needed', () => {
    if (autoTouch) key.touch('approve');
  });
  // The backend's ceremonies find the lab key as the app does (client/webauthn/keys.ts).
  process.env.KEYPORT_LAB_SECURITY_KEY = key.socketPath;
  await writeFile(join(work, 'roles.yaml'), ROLES_YAML);
  expect((await runAdmin(cluster, ['create', '-f', join(work, 'roles.yaml')])).code).toBe(0);
  const added = await runAdmin(cluster, ['users', 'add', 'jerry', '--roles', 'access-dev,access-prod']);
  const token = /signup token: (\S+)/.exec(added.stdout)?.[1] ?? '';
  const common = ['--cluster', cluster.address, '--ca-pin', cluster.caPin];
  const signup = await cli(
    ['signup', ...common, '--token', token, '--device', 'webauthn', '--device-name', 'key'],
    [PASSWORD],
  );
  expect(signup.code, signup.stderr).toBe(0);
  // Signed in from the terminal: the app shares KEYPORT_HOME and starts signed in.
  const login = await cli(
    ['login', ...common, '--user', 'jerry', '--password-stdin', '--keystore', 'file', '--mfa', 'key'],
    [PASSWORD],
  );
  expect(login.code, login.stderr).toBe(0);
  for (const [name, labels, tamper] of [
    ['prod3', 'env=prod', undefined],
    ['rogue', 'env=dev', rogueHostCertificate('rogue')],
  ] as const) {
    sshds.push(
      await startLabNode(cluster, {
        name,
        labels,
        dir: join(work, `node-${name}`),
        nodeCommand,
        ...(tamper ? { tamper } : {}),
      }),
    );
  }
  backend = createBackend({
    profiles: new ProfileStore(home()),
    keystoreKind: 'file',
    env: { ...clock.env, KEYPORT_LAB_SECURITY_KEY: key.socketPath },
  });
  await backend.ready;
  host = await startBrowserHost({ backend, distDir: join(repoRoot, 'dist') });
  browser = await launchLabChromium();
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) csp.push(message.text());
  });
  // Waits are for the screen itself, bounded generously for a loaded machine (npm run test:load).
  page.setDefaultTimeout(60_000);
  await page.goto(host.url);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await host?.close();
  await backend?.close();
  for (const sshd of sshds) await sshd.stop();
  await key?.stop();
  await cluster?.stop();
  await nodeCommand?.remove();
  clock?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Keyport Connect, a terminal to a server end to end', () => {
  it('lists the servers and asks for the login on Connect', async () => {
    await button('Servers').click();
    await page.getByRole('heading', { name: 'Servers on terminal-e2e' }).waitFor();
    await page.getByRole('table').waitFor();
    expect(await page.getByRole('table').getByRole('rowheader').allTextContents()).toEqual([
      'prod3',
      'rogue',
    ]);
    await page.getByRole('button', { name: 'Connect to prod3' }).click();
    const picker = page.getByRole('dialog', { name: 'Connect to prod3' });
    await picker.waitFor();
    expect(await picker.getByRole('radio', { name: 'jerry' }).isChecked()).toBe(true);
    expect(await accessibilityFindings(page), 'axe on the login picker').toEqual([]);
    await screenshot('login-picker');
    autoTouch = false;
    await picker.getByRole('button', { name: 'Connect' }).click();
  });

  it('asks for the per-session touch in the app’s prompt, naming login@node', async () => {
    const spent = spentCertificates();
    const prompt = page.getByRole('dialog', { name: 'Security key' });
    await prompt.waitFor();
    expect(await prompt.textContent()).toContain('Tap your security key to connect to jerry@prod3');
    expect(await accessibilityFindings(page), 'axe on the touch prompt').toEqual([]);
    await screenshot('touch-prompt');
    expect(key.touch('approve')).toBe(true);
    await prompt.waitFor({ state: 'detached' });
    await page.getByText('Connected to jerry@prod3.').waitFor();
    // The tab's own single-use certificate, spent by its connection.
    await expect.poll(spentCertificates, { timeout: 60_000 }).toBe(spent + 1);
  });

  it('runs echo in the terminal and shows the output in xterm', async () => {
    const panel = page.getByRole('tabpanel', { name: 'jerry@prod3' });
    const rows = panel.locator('.xterm-rows');
    // The shell's prompt, then the command and its output.
    await expect.poll(async () => (await rows.textContent()) ?? '', { timeout: 60_000 }).toMatch(/\$\s*$/m);
    await panel.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type('echo hello-keyport-$((40+2))');
    await page.keyboard.press('Enter');
    await expect
      .poll(async () => (await rows.textContent()) ?? '', { timeout: 60_000 })
      .toContain('hello-keyport-42');
    // xterm's theme and cell sizes apply although the CSP refuses its inline <style> elements: their rules
    // are adopted stylesheets (renderer/src/ui/Terminals/adopted-styles.ts). Chromium still reports each
    // refused element; nothing else (no script, no other style) is refused.
    const color = await page.evaluate<string>(
      `getComputedStyle(document.querySelector('[role=tabpanel]:not([hidden]) .xterm-rows')).color`,
    );
    expect(color).toBe('rgb(230, 230, 230)');
    expect(csp.length).toBeGreaterThan(0);
    for (const line of csp) expect(line).toMatch(/^Applying inline style violates .*'style-src 'self''/);
    expect(await accessibilityFindings(page), 'axe on a connected terminal').toEqual([]);
    await screenshot('terminal');
  });

  it('opens a second tab; a node whose host certificate is not from the cluster is refused, and the tab says why', async () => {
    autoTouch = true;
    await button('Servers').click();
    await page.getByRole('button', { name: 'Connect to rogue' }).click();
    await page
      .getByRole('dialog', { name: 'Connect to rogue' })
      .getByRole('button', { name: 'Connect' })
      .click();
    await page.getByRole('tab', { name: 'jerry@rogue (ended)' }).waitFor();
    expect(await page.getByRole('tab').allTextContents()).toEqual(['jerry@prod3', 'jerry@rogue (ended)']);
    expect(
      await page.getByRole('tabpanel', { name: 'jerry@rogue (ended)' }).getByRole('alert').textContent(),
    ).toMatch(
      /rogue \(127\.0\.0\.1:\d+\) did not show a host certificate from .* host CA, so Keyport did not connect/,
    );
    expect(await accessibilityFindings(page), 'axe on an ended tab').toEqual([]);
    await screenshot('host-not-trusted');
    // Back to the first tab: still connected; `exit` ends it with its code.
    await page.getByRole('tab', { name: 'jerry@prod3' }).click();
    const panel = page.getByRole('tabpanel', { name: 'jerry@prod3' });
    await panel.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type('exit 0');
    await page.keyboard.press('Enter');
    await panel.getByText('The session on prod3 ended.').waitFor();
    await page.getByRole('tab', { name: 'jerry@prod3 (ended)' }).waitFor();
    await screenshot('ended');
  });
});
