// Device trust for SSH (issue 11): a role requires a trusted device on the nodes its allow matches. Real
// keyport-auth, a real swtpm as this machine's TPM, a real sshd whose keyport-node asks keyport-auth. Dana
// without a trusted device is refused by keyport ssh (a clear error, before ssh runs) and by the node
// itself (her session's certificate offered directly); once this device is enrolled and she signs in
// again, keyport ssh opens prod1.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import { ProfileStore } from '../client/profiles';
import { profileSigner } from '../client/session';
import { keepHostCa } from '../client/ssh/known-hosts';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { loginUser, openClusterDb, runAdmin, runKeyport, signUpUser, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { ensureLabAccounts, labNodeCommand, sshWithAgent, startLabNode } from '../lab/sshd';
import type { LabSshd, NodeCommand } from '../lab/sshd';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

const ASSET_TAG = 'C00SSHDT0001';
// Dana signs up with \`basic\` (a role that requires a trusted device would require one for her first MFA
// device too); prod-trusted is hers from the next login on.
const BASIC = `kind: role
version: v7
metadata:
  name: basic
spec:
  allow:
    logins: [dana]
`;
const DANA = `kind: user
version: v2
metadata:
  name: dana
spec:
  roles: [basic, prod-trusted]
  traits:
    logins: [dana]
`;
const ROLE = `kind: role
version: v7
metadata:
  name: prod-trusted
spec:
  options:
    device_trust_mode: required
  allow:
    node_labels:
      env: prod
    logins: [dana]
`;

let work: string;
let clock: LabClock;
let tpm: LabTpm;
let cluster: LabCluster;
let nodeCommand: NodeCommand;
let sshd: LabSshd;
let dana: SignedUpUser;
const home = () => join(work, 'home');
const deviceEnv = () => ({ ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG, ...clock.env });

async function signIn() {
  const result = await loginUser(
    cluster,
    home(),
    dana,
    ['--keystore', 'file'],
    deviceEnv(),
    totpCode(dana.totpSecret, clock.now() + 30_000),
  );
  // A fresh OTP step for the next sign-in.
  clock.advance(60_000);
  return result;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-ssh-dt-'));
  clock = createLabClock();
  ensureLabAccounts(['dana']);
  tpm = await startLabTpm();
  nodeCommand = await labNodeCommand(clock.env);
  cluster = await startLabCluster({
    clusterName: 'ssh-dt',
    env: clock.env,
    configYaml: [
      'auth_service:',
      '  authentication:',
      '    type: local',
      '    second_factor: otp',
      '    device_trust:',
      '      mode: optional',
      '',
    ].join('\n'),
  });
  await writeFile(join(work, 'roles.yaml'), `${BASIC}---\n${ROLE}`);
  expect((await runAdmin(cluster, ['create', '-f', join(work, 'roles.yaml')])).code).toBe(0);
  dana = await signUpUser(cluster, home(), 'dana', ['basic']);
  await writeFile(join(work, 'dana.yaml'), DANA);
  expect((await runAdmin(cluster, ['create', '--force', '-f', join(work, 'dana.yaml')])).code).toBe(0);
  sshd = await startLabNode(cluster, {
    name: 'prod1',
    labels: 'env=prod',
    dir: join(work, 'node-prod1'),
    nodeCommand,
  });
}, 180_000);

afterAll(async () => {
  await sshd?.stop();
  await cluster?.stop();
  await tpm?.stop();
  await nodeCommand?.remove();
  clock?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('device trust required by a role, for SSH', () => {
  it('refuses dana without a trusted device: keyport ssh before ssh runs, and the node itself', async () => {
    expect((await signIn()).code).toBe(0);
    const refused = await runKeyport(['ssh', 'dana@prod1', 'echo', 'no'], { home: home(), env: deviceEnv() });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/A trusted device is required for node "prod1": enroll this device/);
    // Her session's certificate, offered to the node directly: keyport-node refuses it too.
    const profiles = new ProfileStore(home());
    const profile = (await profiles.getProfile())!;
    // The host CA as `nodes add` wrote it (keyport ssh, refused, wrote no known_hosts line).
    const hostCa = await readFile(join(work, 'node-prod1', 'host_ca.pub'), 'utf8');
    const direct = await sshWithAgent(
      work,
      {
        signer: profileSigner(profiles, profile),
        certificate: profile.sshCertificate,
        login: 'dana',
        knownHostsFile: await keepHostCa(home(), profile.address, hostCa),
      },
      { name: 'prod1', addr: sshd.addr },
      'echo no',
    );
    expect(direct.code).toBe(255);
    expect(direct.stdout).toBe('');
    const db = openClusterDb(cluster);
    const refusals = db
      .prepare("SELECT message FROM audit_events WHERE type = 'session.connect' AND success = 0")
      .all() as { message: string }[];
    db.close();
    expect(refusals.map((row) => row.message)).toContainEqual(
      expect.stringMatching(/^dana@prod1 refused: A trusted device is required for node "prod1"/),
    );
  });

  it('allows dana once this device is enrolled and she signs in again', async () => {
    expect(
      (await runAdmin(cluster, ['devices', 'add', '--os', 'linux', '--asset-tag', ASSET_TAG])).code,
    ).toBe(0);
    const tokenRun = await runAdmin(cluster, ['devices', 'enroll', '--asset-tag', ASSET_TAG]);
    const token = /keyport device enroll --token=(\S+)/.exec(tokenRun.stdout)?.[1] ?? '';
    const enrolled = await runKeyport(['device', 'enroll', `--token=${token}`], {
      home: home(),
      env: deviceEnv(),
    });
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect((await signIn()).code).toBe(0);
    const allowed = await runKeyport(['ssh', 'dana@prod1', 'echo', 'trusted'], {
      home: home(),
      env: deviceEnv(),
    });
    expect(allowed.code, allowed.stderr + (await sshd.log())).toBe(0);
    expect(allowed.stdout).toBe('trusted\n');
  });
});
