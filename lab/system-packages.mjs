// Checks the Debian packages that `npm start` / `npm test` need. As root it installs the missing ones
// (apt-get update, then apt-get install -y --no-install-recommends); otherwise it prints the one exact
// sudo line and exits non-zero. Plain Node, no dependencies: it runs before anything else.
import { execFileSync, spawnSync } from 'node:child_process';

/** Why each package is here, so the list stays honest. */
const packages = {
  'openssh-client': ['start', 'test'], // ssh-keygen: the tests check SSH certificates with OpenSSH itself
  'openssh-server': ['test'], // sshd: the nodes of the SSH tests (lab/sshd.ts), private instances on 127.0.0.1
  'gnome-keyring': ['start', 'test'], // Secret Service for the keychain (lab keyring on headless machines)
  'dbus-daemon': ['start', 'test'], // a private session bus for that keyring, and the lab's notification server's (lab/notifications.ts)
  'libnotify-bin': ['start', 'test'], // notify-send: the browser host's desktop notifications (freedesktop Notifications over D-Bus)
  'libglib2.0-bin': ['test'], // gdbus: the lab notification server's test calls it as a desktop's tools would
  'dbus-bin': ['start', 'test'], // dbus-send: the client asks the Secret Service whether it is locked
  'libusb-1.0-0': ['start', 'test'], // node-hid's Linux binary links it, even for hidraw (USB security keys)
  'libsecret-tools': ['test'], // secret-tool: tests read the keychain from outside the client
  chromium: ['start', 'test'], // the browser host's app window; Playwright drives it in the end-to-end tests
  xvfb: ['test'], // a private display for the tests' windows (npm start needs a real display for one)
  'fonts-liberation': ['start', 'test'], // readable text in the window and the screenshots
  gcc: ['start', 'test'], // builds native/tpm-helper, the bridge to the TPM
  // node-gyp's toolchain: npm install builds better-sqlite3 and node-pty (the app's terminals) from source.
  // Listed so a machine that lacks them hears so here too; a fresh clone needs them before `npm install`.
  python3: ['start', 'test'],
  make: ['start', 'test'],
  'g++': ['start', 'test'],
  'pkg-config': ['start', 'test'], // finds tss2's compiler and linker flags for that build
  'libtss2-dev': ['start', 'test'], // tss2 (ESYS, TCTI loader, RC decoding, marshalling): headers and libraries
  swtpm: ['start', 'test'], // the lab's software TPM (one per test worker, or the demo's)
  'swtpm-tools': ['start', 'test'], // swtpm_setup and swtpm_localca: the lab TPM's EK and its certificate
  'gnutls-bin': ['start', 'test'], // certtool: swtpm_localca makes the lab's TPM manufacturer CA with it
  'tpm2-tools': ['test'], // tpm2_makecredential: the tests make credentials with a TSS other than ours
  postgresql: ['test'], // the store conformance suite and the replica tests run a private PostgreSQL (lab/postgres.ts)
  pcscd: ['test'], // PC/SC daemon for the lab's virtual PIV card (lab/piv, in a private network namespace)
  'vsmartcard-vpcd': ['test'], // vpcd: pcscd's virtual reader driver, which the lab's PIV card connects to
  'libpcsclite-dev': ['start', 'test'], // PC/SC headers and library: native/pcsclite-build.mjs builds the pcsclite npm package (client/hardware/piv) against them
  'pcsc-tools': ['test'], // pcsc_scan: the PIV lab test checks the reader pcscd shows
  opensc: ['test'], // opensc-tool, piv-tool, pkcs15-tool: a second PIV host stack drives the lab card
  'yubico-piv-tool': ['test'], // Yubico's own PIV tool drives the lab card as it drives a YubiKey
  'xdg-utils': ['start', 'test'], // xdg-open and xdg-mime: keyport:// links reach the app through a private desktop entry (lab/xdg.ts)
  'stress-ng': ['load'], // npm run test:load keeps every core busy while the suite runs
};

const mode = process.argv[2] ?? 'test';
const wanted = Object.entries(packages)
  .filter(([, modes]) => modes.includes(mode) || (mode === 'load' && modes.includes('test')))
  .map(([name]) => name);

function installed(name) {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.includes('install ok installed');
}

if (spawnSync('dpkg-query', ['--version']).status !== 0) {
  console.error('system-packages: dpkg-query not found; this project expects Debian 12. Install by hand:');
  console.error(`  ${wanted.join(' ')}`);
  process.exit(1);
}

const missing = wanted.filter((name) => !installed(name));
if (missing.length === 0) process.exit(0);

if (process.getuid?.() !== 0) {
  console.error(`Keyport needs these Debian packages for \`npm ${mode}\`. Install them with:`);
  console.error(`  sudo apt-get install -y --no-install-recommends ${missing.join(' ')}`);
  process.exit(1);
}

console.log(`system-packages: installing ${missing.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
