// npm start (for now): a local demo cluster in ./.keyport-demo/ with the user alice, signed up with a
// password and an OTP device; prints how to log in with the keyport CLI and a fresh OTP code every 30 s.
// When the desktop app lands, this launcher opens it instead.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { totpCode } from '../auth/totp';
import { connectCluster } from '../client/api';
import { parseClusterAddress, pinOf } from '../client/cluster-trust';
import { repoRoot, startLabCluster } from './cluster';
import { startLabKeyring } from './keyring';
import type { LabKeyring } from './keyring';

const demoDir = join(repoRoot, '.keyport-demo');
const credentialsFile = join(demoDir, 'alice.json');

interface DemoCredentials {
  user: string;
  password: string;
  totpSecret: string;
  otpauthUri: string;
}

async function createAlice(dataDir: string, address: string): Promise<DemoCredentials> {
  const identity = JSON.parse(await readFile(join(dataDir, 'admin-identity.json'), 'utf8'));
  const api = connectCluster({
    address: parseClusterAddress(address),
    caPem: identity.caCertPem,
    caPin: pinOf(new X509Certificate(identity.caCertPem)),
    clientKeyPem: identity.keyPem,
    clientCertPem: identity.certPem,
  });
  try {
    const { signupToken } = await api.admin.createUser({
      name: 'alice',
      roles: ['access', 'editor'],
      traits: { logins: 'alice,root' },
    });
    const started = await api.auth.startSignup({ token: signupToken, deviceType: 1 });
    const totp = started.registerChallenge?.totp;
    if (!totp) throw new Error('the demo cluster did not offer an OTP device');
    const password = `alice-${Math.random().toString(36).slice(2, 10)}-demo`;
    await api.auth.completeSignup({
      token: signupToken,
      password,
      newDevice: {
        challengeId: '',
        deviceName: 'otp',
        response: { $case: 'totp', value: { code: totpCode(totp.secret, Date.now()) } },
      },
    });
    return { user: 'alice', password, totpSecret: totp.secret, otpauthUri: totp.otpauthUri };
  } finally {
    api.close();
  }
}

async function main() {
  // grpc-js sends an IP target as TLS SNI, which Node flags (DEP0123); the notice is noise here.
  process.removeAllListeners('warning');
  await mkdir(demoDir, { recursive: true, mode: 0o700 });
  const firstStart = !existsSync(join(demoDir, 'auth'));
  const dataDir = join(demoDir, 'auth');
  // A fixed port keeps the printed login line (and the CLI's pinned trust) valid across restarts.
  const cluster = await startLabCluster({
    clusterName: 'keyport-demo',
    dataDir,
    extraArgs: ['--listen', '127.0.0.1:3025'],
  }).catch(() => startLabCluster({ clusterName: 'keyport-demo', dataDir }));
  let keyring: LabKeyring | undefined;
  let credentials: DemoCredentials;
  if (firstStart || !existsSync(credentialsFile)) {
    credentials = await createAlice(cluster.dataDir, cluster.address);
    await writeFile(credentialsFile, JSON.stringify(credentials, null, 2), { mode: 0o600 });
    await chmod(credentialsFile, 0o600);
  } else {
    credentials = JSON.parse(await readFile(credentialsFile, 'utf8'));
  }
  let envPrefix = `KEYPORT_HOME=${join(demoDir, 'home')}`;
  if (!process.env.DBUS_SESSION_BUS_ADDRESS) {
    keyring = await startLabKeyring();
    envPrefix += ` DBUS_SESSION_BUS_ADDRESS=${keyring.env.DBUS_SESSION_BUS_ADDRESS}`;
  }

  const lines = [
    '',
    'Keyport demo cluster is running.',
    `  cluster:   ${cluster.clusterName} at ${cluster.address}`,
    `  CA pin:    ${cluster.caPin}`,
    `  user:      ${credentials.user}`,
    `  password:  ${credentials.password}${firstStart ? '' : '   (kept in .keyport-demo/alice.json)'}`,
    `  OTP:       ${credentials.otpauthUri}`,
    keyring ? '  keychain:  a lab Secret Service (no session keychain was found), alive while this runs' : '',
    '',
    'Log in with the CLI (in another terminal, from this folder):',
    `  ${envPrefix} npx keyport login --cluster ${cluster.address} --user alice --ca-pin ${cluster.caPin}`,
    `  ${envPrefix} npx keyport status`,
    `  ${envPrefix} npx keyport admin get users`,
    '',
    'Current OTP codes for alice follow every 30 s. Ctrl-C stops the demo.',
  ];
  console.log(lines.filter((line, i) => line !== '' || lines[i - 1] !== '').join('\n'));

  let lastStep = -1;
  const tick = setInterval(() => {
    const step = Math.floor(Date.now() / 30_000);
    if (step === lastStep) return;
    lastStep = step;
    console.log(`  OTP code for alice: ${totpCode(credentials.totpSecret, Date.now())}`);
  }, 1000);

  const stop = async () => {
    clearInterval(tick);
    await keyring?.stop();
    await cluster.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
