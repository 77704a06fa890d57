// `keyport ssh NODE true` against plain `ssh` with a certificate from a file to the same sshd (issue 11),
// in the same run: the session's key (a copy of the file keystore's PEM) and certificate handed to ssh
// with -i (KEY-cert.pub beside it). Both pay the node's keyport-node checks. Measured for a node without per-session MFA (dev1) and with it (prod3: one touch of a lab
// key that approves at once, a single-use certificate, keyport-node's spend). Also counted: the round trips
// to keyport-auth of a per-session connection, and keyport-node's calls per sshd connection (sshd runs it
// twice: the query and the signed request). `npm run bench -- ssh`.
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileKeyStoreDir } from '../client/keystore';
import { ProfileStore } from '../client/profiles';
import { prepareSsh } from '../client/ssh/session';
import { keyportCliPath, openClusterDb, runAdmin, runKeyport, startLabCluster } from '../lab/cluster';
import { startSoftKey } from '../lab/security-key/soft-key';
import { ensureLabAccounts, labNodeCommand, startLabNode } from '../lab/sshd';
import { median, report, timeEach } from './stats';

const RUNS = Number(process.env.BENCH_SSH_RUNS ?? 8);
const ROLES = `kind: role
version: v7
metadata: { name: access-dev }
spec: { allow: { node_labels: { env: dev }, logins: [jerry] } }
---
kind: role
version: v7
metadata: { name: access-prod }
spec:
  options: { require_session_mfa: true }
  allow: { node_labels: { env: prod }, logins: [jerry] }
`;

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(0) : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`)),
    );
  });
}

export async function benchSsh() {
  const work = await mkdtemp(join(tmpdir(), 'kp-bench-ssh-'));
  const home = join(work, 'home');
  ensureLabAccounts(['jerry']);
  const nodeCommand = await labNodeCommand();
  const cluster = await startLabCluster({
    clusterName: 'bench-ssh',
    configYaml:
      'auth_service:\n  public_addr: localhost:0\n  authentication:\n    type: local\n    second_factors: [webauthn, otp]\n    webauthn:\n      rp_id: localhost\n',
  });
  const key = await startSoftKey({ socketPath: join(work, 'key.sock'), statePath: join(work, 'key.json') });
  const env = { ...process.env, KEYPORT_HOME: home, KEYPORT_LAB_SECURITY_KEY: key.socketPath };
  const sshds = [];
  try {
    await writeFile(join(work, 'roles.yaml'), ROLES);
    await runAdmin(cluster, ['create', '-f', join(work, 'roles.yaml')]);
    const added = await runAdmin(cluster, ['users', 'add', 'jerry', '--roles', 'access-dev,access-prod']);
    const token = /signup token: (\S+)/.exec(added.stdout)?.[1] ?? '';
    const cli = (args: string[], input: string[] = []) =>
      runKeyport(args, { home, input, env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } });
    const password = 'jerry-password-123';
    await cli(
      [
        'signup',
        '--cluster',
        cluster.address,
        '--token',
        token,
        '--ca-pin',
        cluster.caPin,
        '--device',
        'webauthn',
      ],
      [password],
    );
    const login = await cli(
      [
        'login',
        '--cluster',
        cluster.address,
        '--user',
        'jerry',
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
      ].concat(['--keystore', 'file', '--mfa', 'key']),
      [password],
    );
    if (login.code !== 0) throw new Error(`login failed: ${login.stderr}`);
    const dev1 = await startLabNode(cluster, {
      name: 'dev1',
      labels: 'env=dev',
      dir: join(work, 'dev1'),
      nodeCommand,
    });
    sshds.push(dev1);
    const prod3 = await startLabNode(cluster, {
      name: 'prod3',
      labels: 'env=prod',
      dir: join(work, 'prod3'),
      nodeCommand,
    });
    sshds.push(prod3);

    // The floor: plain ssh, the same key and certificate from files, the same sshd and host CA check.
    const profiles = new ProfileStore(home);
    const profile = (await profiles.getProfile())!;
    // ssh expands % in -i, and the keystore's file names are URL-encoded: a copy under a plain name (0600,
    // in this run's temporary folder, removed with it).
    const keyFile = join(work, 'id_session');
    await copyFile(join(fileKeyStoreDir(home), (await readdir(fileKeyStoreDir(home)))[0]!), keyFile);
    await chmod(keyFile, 0o600);
    // ssh loads KEY-cert.pub beside -i KEY.
    const certFile = `${keyFile}-cert.pub`;
    await writeFile(certFile, `${profile.sshCertificate}\n`);
    await cli(['ssh', 'jerry@dev1', 'true']); // writes known_hosts
    const plain = (addr: string) => {
      const [host = '', port = ''] = addr.split(':');
      return run('ssh', [
        '-F',
        '/dev/null',
        '-i',
        keyFile,
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'IdentityAgent=none',
        '-o',
        `UserKnownHostsFile=${join(home, 'known_hosts')}`,
        '-o',
        'GlobalKnownHostsFile=/dev/null',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'HostKeyAlias=dev1',
        '-o',
        'BatchMode=yes',
        '-p',
        port,
        '-l',
        'jerry',
        host,
        'true',
      ]);
    };
    const keyport = (node: string) =>
      run(process.execPath, [keyportCliPath, 'ssh', `jerry@${node}`, 'true'], env);

    // Round trips of one per-session connection, and keyport-node's calls for it.
    process.env.KEYPORT_LAB_SECURITY_KEY = key.socketPath;
    const calls: string[] = [];
    const prepare = (node: string, onCall?: (method: string) => void) =>
      prepareSsh(
        profiles,
        { node, login: 'jerry' },
        {
          mfa: {
            otpCode: () => Promise.reject(new Error('no OTP')),
            securityKey: {
              tap: () => {},
              pin: () => Promise.reject(new Error('no PIN')),
              newPin: () => Promise.reject(new Error('no PIN')),
              notice: () => {},
            },
          },
        },
        onCall,
      );
    await (await prepare('prod3', (method) => calls.push(method))).close();
    const connects = () => {
      const db = openClusterDb(cluster);
      const row = db
        .prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'session.connect'")
        .get() as { n: number };
      db.close();
      return row.n;
    };
    const [auditedBefore, callsBefore] = [connects(), await nodeCommand.calls()];
    await keyport('prod3');
    const nodeCalls = (await nodeCommand.calls()) - callsBefore;
    const audited = connects() - auditedBefore;

    await plain(dev1.addr); // warm
    const floor = await timeEach(RUNS, () => plain(dev1.addr));
    const noMfa = await timeEach(RUNS, () => keyport('dev1'));
    const perSession = await timeEach(RUNS, () => keyport('prod3'));
    const startOnly = await timeEach(RUNS, () => run(process.execPath, [keyportCliPath, '--help'], env));
    // The breakdown: keyport ssh ≈ CLI start + the steps before ssh (round trips, touch, agent; timed here
    // in this process) + ssh itself (≈ the floor, which pays sshd's two keyport-node runs too).
    const prepareNoMfa = await timeEach(RUNS, async () => (await prepare('dev1')).close());
    const preparePerSession = await timeEach(RUNS, async () => (await prepare('prod3')).close());
    const extra = {
      keyport_cli_start_median_ms: Number(median(startOnly).toFixed(1)),
      prepare_no_mfa_median_ms: Number(median(prepareNoMfa).toFixed(1)),
      prepare_per_session_median_ms: Number(median(preparePerSession).toFixed(1)),
      round_trips_per_session_mfa_connection: calls.length,
      round_trip_methods: calls,
      keyport_node_calls_per_connection: nodeCalls,
      session_connect_audited_per_connection: audited,
    };
    return {
      no_mfa: report('keyport ssh dev1 true', noMfa, 'plain ssh -i KEY (KEY-cert.pub)', floor, extra),
      per_session: report(
        'keyport ssh prod3 true (per-session MFA)',
        perSession,
        'plain ssh -i KEY (KEY-cert.pub)',
        floor,
        extra,
      ),
    };
  } finally {
    for (const sshd of sshds) await sshd.stop();
    await key.stop();
    await cluster.stop();
    await nodeCommand.remove();
    await rm(work, { recursive: true, force: true });
  }
}
