// npm start: a local demo cluster in ./.keyport-demo/ (its web UI on https://localhost:3080), a lab security key that touches itself about
// 800 ms after it is asked (so the tap prompt shows), the user alice with a password, that key (a passkey,
// PIN 1234) and an OTP device, and Keyport Connect opened logged out and ready: Electron when a runnable
// Electron binary is installed, otherwise the browser host in a Chromium app window (or its URL printed
// when there is no display). The app and the keyport CLI share .keyport-demo/home. A software TPM
// (swtpm, state in .keyport-demo/tpm) is this machine's TPM, registered in the demo cluster's device
// inventory, so "Enroll this device" works in the app. A virtual PIV card (lab/piv, state in
// .keyport-demo/piv-card.json) on a private pcscd, whose attestation root the cluster trusts, for
// hardware-key policies: .keyport-demo/hardware-key.yaml gives alice a role that requires one. The lab
// OpenID Provider and an oidc connector for it (lab/demo-sso.ts), for "Sign in with Lab IdP".
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { totpCode } from '../auth/totp';
import { parseClusterAddress } from '../client/cluster-trust';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import { ProfileStore } from '../client/profiles';
import { ensureTrustedCluster } from '../client/session';
import { createBackend } from '../main/backend/backend';
import { startBrowserHost } from '../main/browser/host';
import { listenForLinks } from '../main/backend/link-socket';
import { listenForReloginRequests } from '../main/backend/relogin-socket';
import { openAppWindow } from '../main/browser/chromium';
import { openWithXdg } from '../main/browser/open-in-browser';
import type { OpenInBrowser } from '../main/backend/web-approval';
import { electronBinary } from '../main/electron/locate';
import { trustClusterCaFlag } from './chromium';
import { attestationRootsYaml, connectAsAdmin, repoRoot, startLabCluster } from './cluster';
import type { LabCluster } from './cluster';
import { connectClusterConfig, signUpWithLabKey } from './connect';
import { startDemoSso } from './demo-sso';
import { freePort } from './oidc/sso-login';
import type { KeyPerson } from './connect';
import { startLabKeyring } from './keyring';
import type { LabKeyring } from './keyring';
import { startSoftKey } from './security-key/soft-key';
import { startLabTpm } from './tpm';
import { checkoutLinkHandler, installLinkHandler } from './xdg';
import type { PrivateXdg } from './xdg';
import { startLabPivCard } from './piv/lab';

const DEMO_VERSION = 2;
const KEY_PIN = '1234';
// Overridable so a test can run the whole launcher in a temporary folder on a free port.
const demoDir = process.env.KEYPORT_DEMO_DIR || join(repoRoot, '.keyport-demo');
const listen = process.env.KEYPORT_DEMO_LISTEN || '127.0.0.1:3025';
/** The web UI's listener (keyport-auth --web-listen): https://localhost:3080 unless overridden. */
const webListen = process.env.KEYPORT_DEMO_WEB_LISTEN || '127.0.0.1:3080';
const credentialsFile = join(demoDir, 'alice.json');
const home = join(demoDir, 'home');

/** A step of the demo's shutdown; `what` says what it did, for the line printed on stop ('' for none). */
interface Cleanup {
  what: string;
  run: () => Promise<unknown>;
}

/** Set once Ctrl-C (or SIGTERM) stops the demo, so the window closing then is not reported as the person's. */
let demoStopping = false;

interface DemoState extends KeyPerson {
  version: number;
}

async function loadState(): Promise<DemoState | undefined> {
  if (!existsSync(credentialsFile)) return undefined;
  const state = JSON.parse(await readFile(credentialsFile, 'utf8')) as Partial<DemoState>;
  return state.version === DEMO_VERSION ? (state as DemoState) : undefined;
}

/** The demo machine's asset tag, as `keyport device asset-tag` reports it under the demo's environment. */
const DEMO_ASSET_TAG = 'KEYPORT-DEMO-1';

/**
 * The connect cluster's config with device trust on (optional): logins from an enrolled device carry it;
 * and the lab PIV card's attestation root trusted, for hardware-key policies.
 */
function demoConfig(pivRootPem: string, idpCaFile: string): string {
  return `${connectClusterConfig('localhost:3025')}    device_trust:\n      mode: optional\n${attestationRootsYaml(pivRootPem)}  oidc_ca_file: ${idpCaFile}\n`;
}

/** What `keyport admin create --force -f` applies to try a hardware-key policy: the seed's role, given to alice. */
const HARDWARE_KEY_YAML = `# A role that requires a session key on a PIV card with a touch (the seed "Hardware Key Support"),
# and alice with it. Apply as alice (editor): keyport admin create --force -f <this file>
kind: role
version: v7
metadata:
  name: hardware-key
spec:
  options:
    require_session_mfa: hardware_key_touch
---
kind: user
version: v2
metadata:
  name: alice
spec:
  roles: [access, editor, hardware-key]
  traits:
    logins: [alice, root]
`;

/** Registers the demo machine (once) and returns a fresh enrollment token while it is not enrolled. */
async function registerDemoMachine(cluster: LabCluster): Promise<string | undefined> {
  const admin = await connectAsAdmin(cluster);
  try {
    const known = (await admin.devices.listDevices({})).devices.find((d) => d.assetTag === DEMO_ASSET_TAG);
    if (!known) await admin.devices.addDevice({ osType: 'linux', assetTag: DEMO_ASSET_TAG });
    if (known?.enrollStatus === 'enrolled') return undefined;
    return (await admin.devices.createDeviceEnrollToken({ device: DEMO_ASSET_TAG, ttlSeconds: 0 })).token;
  } finally {
    admin.close();
  }
}

/**
 * The web listener's ports, known before keyport-auth starts (the IdP's client names its callback): the
 * demo's own (a free one for port 0), and a free one to fall back to, as the gRPC port falls back.
 */
async function webPorts(): Promise<[number, number]> {
  const port = Number(webListen.slice(webListen.lastIndexOf(':') + 1));
  return [port > 0 ? port : await freePort(), await freePort()];
}

async function startCluster(
  pivRootPem: string,
  idpCaFile: string,
  ports: [number, number],
): Promise<LabCluster> {
  const dataDir = join(demoDir, 'auth');
  const webHost = webListen.slice(0, webListen.lastIndexOf(':'));
  // A fixed port keeps the printed login line (and the CLI's pinned trust) valid across restarts.
  return startLabCluster({
    clusterName: 'keyport-demo',
    dataDir,
    configYaml: demoConfig(pivRootPem, idpCaFile),
    listen,
    extraArgs: ['--web-listen', `${webHost}:${ports[0]}`],
  }).catch(() =>
    startLabCluster({
      clusterName: 'keyport-demo',
      dataDir,
      configYaml: demoConfig(pivRootPem, idpCaFile),
      extraArgs: ['--web-listen', `127.0.0.1:${ports[1]}`],
    }),
  );
}

async function main() {
  // grpc-js sends an IP target as TLS SNI, which Node flags (DEP0123); the notice is noise here.
  process.removeAllListeners('warning');
  let state = await loadState();
  if (!state && existsSync(demoDir)) {
    console.log(`Resetting ${demoDir} (made by an older demo without a security key).`);
    await rm(demoDir, { recursive: true, force: true });
  }
  await mkdir(demoDir, { recursive: true, mode: 0o700 });
  const cleanups: Cleanup[] = [];
  /** Runs the cleanups, last first, and returns what each one did (or what failed). */
  const cleanUp = async (): Promise<string[]> => {
    const done: string[] = [];
    for (const step of cleanups.reverse()) {
      await step.run().then(
        () => step.what && done.push(step.what),
        (error: unknown) => done.push(`could not ${step.what || 'clean up'}: ${(error as Error).message}`),
      );
    }
    cleanups.length = 0;
    return done;
  };

  try {
    // UNIX socket paths are short (108 bytes): the keys' and pcscd's sockets live in a private temp dir.
    const runDir = await mkdtemp(join(tmpdir(), 'keyport-demo-'));
    cleanups.push({ what: `removed ${runDir}`, run: () => rm(runDir, { recursive: true, force: true }) });
    // The lab IdP before keyport-auth, whose config trusts its CA (new at each start).
    const ports = await webPorts();
    const sso = await startDemoSso({ demoDir, webPorts: ports });
    cleanups.push({ what: 'stopped the lab IdP', run: () => sso.stop() });
    // The PIV card first: the cluster's config trusts its attestation root (kept in its state).
    const pivDir = join(runDir, 'piv');
    await mkdir(pivDir, { mode: 0o700 });
    const piv = await startLabPivCard({ dir: pivDir, statePath: join(demoDir, 'piv-card.json') });
    cleanups.push({ what: 'stopped the lab PIV card and its pcscd', run: () => piv.stop() });
    // libpcsclite reads it once per process: set before the app's backend first opens a card.
    process.env.PCSCLITE_CSOCK_NAME = piv.socketPath;
    await writeFile(join(demoDir, 'hardware-key.yaml'), HARDWARE_KEY_YAML);
    const cluster = await startCluster(piv.attestationRootPem, sso.caFile, ports);
    // One name everywhere, the one WebAuthn needs (browsers refuse an IP address as an RP ID): the
    // banner, the app, the CLI's profile and the cluster's public address all say localhost.
    const address = `localhost:${cluster.port}`;
    cleanups.push({ what: `stopped keyport-auth (${address})`, run: () => cluster.stop() });
    // "Sign in with Lab IdP": the connector for this start's IdP (its port and CA are new each time).
    await sso.register(cluster);
    const key = await startSoftKey({
      socketPath: join(runDir, 'key.sock'),
      statePath: join(demoDir, 'security-key.json'),
      touch: 'auto:800',
      ...(state ? {} : { pin: KEY_PIN }),
    });
    cleanups.push({ what: 'stopped the lab security key', run: () => key.stop() });
    // A second key, registered to no one, for "Add security key": it touches itself sooner (0.4 s), so
    // when both are asked for a new key, the spare one answers before alice's key says it is registered.
    const spareState = join(demoDir, 'spare-key.json');
    const spare = await startSoftKey({
      socketPath: join(runDir, 'spare.sock'),
      statePath: spareState,
      touch: 'auto:400',
      ...(existsSync(spareState) ? {} : { pin: KEY_PIN }),
    });
    cleanups.push({ what: 'stopped the spare lab key', run: () => spare.stop() });
    process.env.KEYPORT_HOME = home;

    if (!state) {
      console.log('Signing alice up with the lab security key (it touches itself; about 3 s)…');
      const person = await signUpWithLabKey(cluster, {
        user: 'alice',
        roles: ['access', 'editor'],
        logins: ['alice', 'root'],
        password: `alice-${Math.random().toString(36).slice(2, 10)}-demo`,
        keySocket: key.socketPath,
        pin: KEY_PIN,
        addOtp: true,
      });
      state = { version: DEMO_VERSION, ...person };
      await writeFile(credentialsFile, JSON.stringify(state, null, 2), { mode: 0o600 });
      await chmod(credentialsFile, 0o600);
    }
    process.env[LAB_SECURITY_KEY_ENV] = `${key.socketPath}:${spare.socketPath}`;
    // This machine's TPM for the demo: a swtpm whose state (EK, enrolled AK) survives restarts.
    const tpm = await startLabTpm({ stateDir: join(demoDir, 'tpm') });
    cleanups.push({ what: 'stopped the lab TPM', run: () => tpm.stop() });
    process.env.KEYPORT_TPM_TCTI = tpm.tcti;
    process.env.KEYPORT_DEVICE_ASSET_TAG = DEMO_ASSET_TAG;
    const enrollToken = await registerDemoMachine(cluster);
    const profiles = new ProfileStore(home);
    // The app opens on the demo cluster's login screen: trust it as `keyport login --ca-pin` would.
    const trusted = await ensureTrustedCluster(profiles, parseClusterAddress(address), {
      caPin: cluster.caPin,
      prompt: { confirmCaPin: async () => false },
    });
    // The login form offers alice, as it would after her own sign-out.
    await profiles.trustCluster({ ...trusted, lastUser: state.user });

    let keyring: LabKeyring | undefined;
    if (!process.env.DBUS_SESSION_BUS_ADDRESS) {
      keyring = await startLabKeyring();
      cleanups.push({ what: 'stopped the lab keychain', run: () => keyring!.stop() });
      process.env.DBUS_SESSION_BUS_ADDRESS = keyring.env.DBUS_SESSION_BUS_ADDRESS;
    }

    const appLines = await openApp(profiles, cleanups, sso.opener(cluster, openWithXdg(process.env)));
    const envPrefix = `KEYPORT_HOME=${home} ${LAB_SECURITY_KEY_ENV}=${process.env[LAB_SECURITY_KEY_ENV]} KEYPORT_TPM_TCTI=${tpm.tcti} KEYPORT_DEVICE_ASSET_TAG=${DEMO_ASSET_TAG} PCSCLITE_CSOCK_NAME=${piv.socketPath}${
      keyring ? ` DBUS_SESSION_BUS_ADDRESS=${process.env.DBUS_SESSION_BUS_ADDRESS}` : ''
    }`;
    const totpSecret = state.totpSecret ?? '';
    const lines = [
      '',
      'Keyport demo is running.',
      `  cluster:       ${cluster.clusterName} at ${address}   (CA pin ${cluster.caPin})`,
      `  web UI:        ${cluster.webOrigin ?? '(none)'}   (its certificate is from the cluster CA above)`,
      `  user:          ${state.user}`,
      `  password:      ${state.password}   (kept in ${credentialsFile})`,
      `  security key:  "${state.keyName}", a lab key that touches itself ~0.8 s after it is asked; PIN ${KEY_PIN}`,
      `  spare key:     a second lab key, registered to no one (touches itself ~0.4 s after; PIN ${KEY_PIN})`,
      `  OTP:           codes below every 30 s`,
      `  TPM:           a lab swtpm as this machine's TPM; device "${DEMO_ASSET_TAG}" is in the inventory${
        enrollToken ? '' : ' (enrolled)'
      }`,
      `  PIV card:      a lab YubiKey-like card (serial ${piv.serial}) on a private pcscd, touched at once; PIN 123456 until you set one`,
      ...sso.bannerLines(),
      keyring
        ? '  keychain:      a lab Secret Service (no session keychain was found), alive while this runs'
        : '',
      '',
      ...appLines,
      '',
      'Try in the app:',
      '  - Sign in as alice with the password and "Security key": the tap prompt shows until the key touches.',
      '  - Sign in with "One-time code" and the current code printed below.',
      `  - "Sign in without a password": the key asks for its PIN (${KEY_PIN}).`,
      '  - "Sign in with Lab IdP": the lab IdP\'s page opens in a Chromium window of its own (it trusts the lab',
      '    CAs); sign in as alice or bob with the password above (carol is denied: no role for her groups).',
      '  - Account: your roles, logins and a live countdown; MFA devices: remove "otp".',
      '  - "Add security key": alice\'s key answers first (it is registered), then the spare key answers as the',
      '    new key; both touch themselves. Tick the passkey box to sign in with the spare key and its PIN later.',
      ...(enrollToken
        ? [
            '  - Account → This device → "Enroll this device": paste this token (single use, 30 minutes), or use',
            `    alice's editor role to enroll without one: ${enrollToken}`,
            '    Then sign in again: the session is "trusted" and its certificates carry the device.',
          ]
        : ['  - Account → This device: enrolled; each sign-in from here is device-trusted.']),
      '',
      `The web UI at ${cluster.webOrigin ?? ''}: sign in as alice with her password and an OTP code (a browser`,
      "cannot reach the lab security key's socket). Its certificate chains to the cluster CA, which no browser",
      'knows: Chromium trusts it for this demo with',
      `  chromium --user-data-dir=$(mktemp -d) ${trustClusterCaFlag(cluster.caPin)} ${cluster.webOrigin ?? ''}`,
      '',
      'The keyport CLI shares the session (in another terminal, from this folder):',
      `  ${envPrefix} npx keyport status`,
      `  ${envPrefix} npx keyport logout      # the app notices within a second`,
      '',
      'A hardware-key policy (the seed "Hardware Key Support"): as alice (editor) in the CLI, give her a role',
      'that requires a key on the PIV card with a touch, then sign in again:',
      `  ${envPrefix} npx keyport login --cluster ${address} --user alice`,
      `  ${envPrefix} npx keyport admin create --force -f ${join(demoDir, 'hardware-key.yaml')}`,
      `  ${envPrefix} npx keyport login --cluster ${address} --user alice`,
      '  The second login says "Unmet private key policy "hardware_key_touch"." and "Relogging in with',
      '  hardware-backed private key.", makes the key in the card\'s slot 9c and signs in with it (keyport',
      `  status shows it). To undo it, delete ${demoDir} (a fresh demo next time).`,
      '',
      'Ctrl-C stops the demo.',
    ];
    console.log(lines.filter((line, i) => line !== '' || lines[i - 1] !== '').join('\n'));

    let lastStep = -1;
    const tick = setInterval(() => {
      const step = Math.floor(Date.now() / 30_000);
      if (step === lastStep || !totpSecret) return;
      lastStep = step;
      console.log(`  OTP code for alice: ${totpCode(totpSecret, Date.now())}`);
    }, 1000);
    cleanups.push({ what: '', run: async () => clearInterval(tick) });
  } catch (error) {
    await cleanUp();
    throw error;
  }

  const stop = async (signal: string) => {
    demoStopping = true;
    console.log(`\n${signal}: stopping the demo…`);
    const done = await cleanUp();
    console.log(`Demo stopped: ${done.join('; ')}.`);
    console.log(`Alice, her keys and the cluster's data stay in ${demoDir} for the next \`npm start\`.`);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('Ctrl-C'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

/** Electron when its binary is present, else the browser host; returns the lines to print about it. */
async function openApp(
  profiles: ProfileStore,
  cleanups: Cleanup[],
  openInBrowser: OpenInBrowser,
): Promise<string[]> {
  const electron = electronBinary(repoRoot);
  if (electron) {
    const child: ChildProcess = spawn(electron, [join(repoRoot, 'dist', 'electron', 'main.mjs')], {
      stdio: 'inherit',
      env: process.env,
    });
    cleanups.push({
      what: 'closed Keyport Connect',
      run: async () => {
        if (child.exitCode === null) child.kill('SIGTERM');
      },
    });
    return ['Keyport Connect (Electron) is open.'];
  }
  let announced = false;
  const backend = createBackend({
    profiles,
    keystoreKind: 'keychain',
    // The SSO window for the lab IdP's pages, xdg-open for the rest (the web-session approval's confirm URL).
    openInBrowser,
    // The renderer says so once its first screen (the sign-in form) is on show and takes input.
    onRendererReady: () => {
      if (announced) return;
      announced = true;
      console.log('Keyport Connect is ready: the sign-in form is on screen.');
    },
  });
  await backend.ready;
  cleanups.push({ what: '', run: () => backend.close() });
  const host = await startBrowserHost({ backend, distDir: join(repoRoot, 'dist') });
  cleanups.push({ what: 'stopped the browser host', run: () => host.close() });
  // keyport:// links: `keyport-connect open-url` hands them over this socket in the demo's KEYPORT_HOME, and
  // the demo's private XDG folders (never the machine's own) make it the keyport:// handler for xdg-open.
  let linkLines: string[];
  try {
    const links = await listenForLinks(home, (link) => backend.openDeepLink(link));
    cleanups.push({ what: '', run: () => links.close() });
    // The keyport CLI's "sign in again" requests show the app's relogin prompt (client/app-relogin.ts).
    const relogins = await listenForReloginRequests(home, backend.relogin);
    cleanups.push({ what: '', run: () => relogins.close() });
    linkLines = xdgOpenLines(await installLinkHandler(join(demoDir, 'xdg'), checkoutLinkHandler(home)));
  } catch (error) {
    // The demo runs without them (a checkout path too long for a UNIX socket, no xdg-utils).
    linkLines = [`keyport:// links are off in this demo: ${(error as Error).message}`];
  }
  // A launch URL works once and for two minutes; Enter prints a fresh one (the token is the capability,
  // so it is not left valid in the terminal's scrollback).
  const printFreshUrl = () => console.log(`  ${host.newLaunchUrl()}   (works once, within 2 minutes)`);
  process.stdin.on('data', printFreshUrl);
  cleanups.push({ what: '', run: async () => void process.stdin.off('data', printFreshUrl).pause() });
  const window = await openAppWindow(host.url);
  if (window) {
    cleanups.push({ what: 'closed the app window', run: () => window.close() });
    void window.exited.then(() => {
      // Only a window the person closed: a stopping demo closes it itself and says so.
      if (demoStopping) return;
      console.log(
        'The app window was closed; the demo keeps running. Press Enter for a URL to open it again.',
      );
    });
    return [
      'Keyport Connect is opening in a Chromium app window (no Electron binary here: the browser host).',
      'Closed it? Press Enter here for a fresh one-time URL to open it again (each works once, for 2 minutes).',
      ...linkLines,
    ];
  }
  // No display: no window. The demo does not start one on a hidden Xvfb, which nobody could see.
  const port = new URL(host.url).port;
  return [
    'No display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so no app window opens: the window needs',
    `a display. Keyport Connect's browser host serves the app on 127.0.0.1:${port} instead. Open this URL`,
    'in a browser on this machine, or on yours through an SSH tunnel to the same port',
    `(ssh -L ${port}:127.0.0.1:${port} THIS-MACHINE). It works once, within 2 minutes; press Enter here`,
    'for a fresh one:',
    `  ${host.url}`,
    ...linkLines,
  ];
}

/** How to send the app a keyport:// link through xdg-open, with the demo's private XDG folders. */
function xdgOpenLines(xdg: PrivateXdg): string[] {
  const env = Object.entries(xdg.env)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
  // A made-up request: the web UI that makes real ones comes with the web-session approval.
  const token = Math.random().toString(36).slice(2).padEnd(16, '0');
  return [
    'A keyport:// link, as the web UI will open one (the app shows "Verify a browser"; it only fills in the',
    `screen). ${xdg.desktopFile} handles keyport:// for xdg-open with these folders (a display must be set):`,
    `  env ${env} xdg-open 'keyport://keyport-demo/authorize-web-session?id=demo-1&token=${token}&redirect=%2F'`,
  ];
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
