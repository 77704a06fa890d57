// The whole path through real processes: admin adds a user → signup with TOTP → login → certificates in
// the profile → keyport status → ssh-keygen accepts the SSH certificate → mTLS admin calls by role.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginUser, runAdmin, runKeyport, signUpUser, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';

let cluster: LabCluster;
let homes: string;

beforeAll(async () => {
  cluster = await startLabCluster({ clusterName: 'foundation' });
  homes = await mkdtemp(join(tmpdir(), 'keyport-homes-'));
});

afterAll(async () => {
  await cluster?.stop();
  await rm(homes, { recursive: true, force: true });
});

describe('signup, login and admin over gRPC/TLS', () => {
  let editor: SignedUpUser;
  let editorHome: string;

  it('signs up an editor with a TOTP first device and logs in with password + OTP', async () => {
    editorHome = join(homes, 'ed');
    editor = await signUpUser(cluster, editorHome, 'ed', ['editor', 'access'], 'ed-password-123', [
      'ed',
      'root',
    ]);
    const login = await loginUser(cluster, editorHome, editor, ['--keystore', 'file', '--ttl', '2h']);
    expect(login.stderr).not.toMatch(/ERROR/);
    expect(login.code).toBe(0);

    const status = await runKeyport(['status'], { home: editorHome });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/User\s+ed/);
    expect(status.stdout).toMatch(/Roles\s+editor, access/);
    expect(status.stdout).toMatch(/Logins\s+ed, root/);
    expect(status.stdout).toMatch(/MFA verified\s+yes/);
    expect(status.stdout).toMatch(/valid for (1h5\dm|2h0m)/);

    const profile = JSON.parse(
      await readFile(join(editorHome, 'profiles', `127.0.0.1_${cluster.port}.json`), 'utf8'),
    );
    expect(profile.tlsCertPem).toContain('BEGIN CERTIFICATE');
    expect(JSON.stringify(profile)).not.toContain('PRIVATE KEY');

    const certPath = join(editorHome, 'profiles', `127.0.0.1_${cluster.port}-cert.pub`);
    const listing = execFileSync('ssh-keygen', ['-L', '-f', certPath], { encoding: 'utf8' });
    expect(listing).toMatch(/user certificate/);
    expect(listing).toMatch(/Principals:\s*\n\s+ed\n\s+root\n/);
    expect(listing).toMatch(/keyport-mfa-verified@keyport\.dev/);
  });

  it('lets an editor call the admin API over mTLS and refuses a user with only the access role', async () => {
    const asEditor = await runKeyport(['admin', 'get', 'cap'], { home: editorHome });
    expect(asEditor.code).toBe(0);
    expect(asEditor.stdout).toMatch(/kind: cluster_auth_preference/);

    const accessHome = join(homes, 'ana');
    const ana = await signUpUser(cluster, accessHome, 'ana', ['access']);
    expect((await loginUser(cluster, accessHome, ana, ['--keystore', 'file'])).code).toBe(0);
    const asAccess = await runKeyport(['admin', 'users', 'ls'], { home: accessHome });
    expect(asAccess.code).toBe(3);
    expect(asAccess.stderr).toMatch(/Access denied: ana \(roles access\) may not list user/);

    const audit = await runAdmin(cluster, ['audit', '--type', 'auth.denied', '--json']);
    const denied = audit.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(denied.some((event) => event.actor === 'ana' && event.success === false)).toBe(true);
  });
});
