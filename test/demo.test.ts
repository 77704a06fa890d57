// `npm start` on a machine with a display: the launcher (lab/demo.ts) on Xvfb brings up the demo cluster,
// the self-touching lab key and alice, and opens Keyport Connect in a Chromium app window that connects
// to the browser host. The screen is saved as test-results/demo/window.png.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { connectTrusted, ensureTrustedCluster } from '../client/session';
import { repoRoot } from '../lab/cluster';
import { xwdToPng } from '../lab/xwd';

let work: string;
let xvfb: ChildProcess;
let display: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-demo-'));
  await mkdir(join(work, 'fb'));
  const displayFile = join(work, 'display');
  await writeFile(displayFile, '');
  // -displayfd writes the display number to fd 3 once the server accepts clients.
  xvfb = spawn(
    'Xvfb',
    ['-displayfd', '3', '-screen', '0', '1280x800x24', '-fbdir', join(work, 'fb'), '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'ignore', openSync(displayFile, 'w')] },
  );
  // The display number arrives once Xvfb accepts clients; a loaded machine may take a while.
  for (const deadline = Date.now() + 30_000; !display && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 50));
    const text = (await readFile(displayFile, 'utf8')).trim();
    if (text) display = `:${text}`;
  }
  if (!display) throw new Error('Xvfb did not start');
});

afterAll(async () => {
  if (xvfb && xvfb.exitCode === null) xvfb.kill('SIGTERM');
  if (work) await rm(work, { recursive: true, force: true });
});

describe('npm start with a display', () => {
  it('opens Keyport Connect in an app window, connected and ready, and stops cleanly', async () => {
    const demo = spawn(join(repoRoot, 'node_modules', '.bin', 'tsx'), [join(repoRoot, 'lab', 'demo.ts')], {
      cwd: repoRoot,
      env: {
        ...process.env,
        DISPLAY: display,
        KEYPORT_DEMO_DIR: join(work, 'demo'),
        KEYPORT_DEMO_LISTEN: '127.0.0.1:0',
        KEYPORT_DEMO_WEB_LISTEN: '127.0.0.1:0',
        DBUS_SESSION_BUS_ADDRESS: '',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    demo.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    demo.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      const deadline = Date.now() + 180_000;
      while (
        !output.includes('Keyport Connect is ready') &&
        Date.now() < deadline &&
        demo.exitCode === null
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(output).toContain('Keyport Connect is ready: the sign-in form is on screen.');
      expect(output).toContain('Chromium app window');
      expect(output).toMatch(/password: +alice-\w+-demo/);
      expect(output).toContain('PIN 1234');
      // A second key, registered to no one, for "Add security key".
      expect(output).toMatch(/spare key: +a second lab key, registered to no one/);
      // A lab PIV card for hardware-key policies, and how to require one.
      expect(output).toMatch(/PIV card: +a lab YubiKey-like card \(serial \d+\)/);
      expect(output).toContain('hardware-key.yaml');
      // SSO: the lab IdP, its users with their passwords and the roles their groups map to.
      expect(output).toMatch(
        /SSO: +"Sign in with Lab IdP" \(oidc connector lab-idp\), a lab OpenID Provider at https:\/\/127\.0\.0\.1:\d+/,
      );
      expect(output).toContain('alice / alice-lab-password: admins, team-platform → access, editor');
      expect(output).toContain('bob / bob-lab-password: team-dev → access');
      expect(output).toContain('carol / carol-lab-password: contractors → no role: denied');
      // …and the cluster lists the connector, as the app's login screen asks it.
      const [, address, caPin] =
        /cluster: +keyport-demo at (\S+) +\(CA pin (sha256:[0-9a-f]{64})\)/.exec(output) ?? [];
      const trusted = await ensureTrustedCluster(
        new ProfileStore(join(work, 'probe-home')),
        parseClusterAddress(address ?? ''),
        { caPin, prompt: { confirmCaPin: async () => false } },
      );
      const api = connectTrusted(trusted);
      try {
        const info = await api.auth.getClusterInfo({});
        expect(info.authConnectors).toEqual([{ name: 'lab-idp', display: 'Lab IdP', type: 'oidc' }]);
      } finally {
        api.close();
      }
      // The launch token never reaches the terminal when a window was opened for it.
      expect(output).not.toContain('#launch=');

      await new Promise((r) => setTimeout(r, 1000));
      const png = xwdToPng(await readFile(join(work, 'fb', 'Xvfb_screen0')));
      await mkdir(join(repoRoot, 'test-results', 'demo'), { recursive: true });
      await writeFile(join(repoRoot, 'test-results', 'demo', 'window.png'), png);
      // Something was drawn: the window's pixels are not one flat colour.
      const idat = png.indexOf('IDAT');
      const pixels = inflateSync(png.subarray(idat + 4, idat + 4 + png.readUInt32BE(idat - 4)));
      expect(new Set(pixels.subarray(0, 200_000)).size).toBeGreaterThan(8);
    } finally {
      const exited = new Promise<number | null>((resolve) => demo.once('exit', resolve));
      if (demo.exitCode === null) demo.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    // One name for the cluster everywhere, and a stop that says what it did (not "keeps running").
    expect(output).toMatch(/cluster: +keyport-demo at localhost:\d+/);
    // keyport-auth's web UI too, on its own origin.
    expect(output).toMatch(/web UI: +https:\/\/localhost:\d+ /);
    expect(output).toMatch(
      /Demo stopped: closed the app window; stopped the browser host; .*stopped keyport-auth \(localhost:\d+\); stopped the lab PIV card and its pcscd; stopped the lab IdP; removed \S+\./,
    );
    expect(output).not.toContain('the demo keeps running');
    // keyport:// links: a desktop entry in the demo's private XDG folders, made the default there.
    const xdg = join(work, 'demo', 'xdg');
    const entry = await readFile(join(xdg, 'data', 'applications', 'keyport-connect.desktop'), 'utf8');
    expect(entry).toContain('MimeType=x-scheme-handler/keyport;');
    expect(entry).toMatch(/^Exec=env KEYPORT_HOME=\S+ \S+ \S+keyport-connect\.mjs open-url %u$/m);
    expect(await readFile(join(xdg, 'config', 'mimeapps.list'), 'utf8')).toContain(
      'x-scheme-handler/keyport=keyport-connect.desktop',
    );
    expect(output).toMatch(
      /env HOME=\S+ XDG_DATA_HOME=\S+ .*xdg-open 'keyport:\/\/keyport-demo\/authorize-web-session\?/,
    );
  }, 240_000);
});
