// Secrets at rest in the auth data dir (issue 8): the TOTP seeds in keyport.db and its WAL, and the CA
// keys in ca/, are sealed under the key-encryption key beside (not inside) the data dir. A copy of the
// data dir without that key starts nothing and reads no secret; a data dir from before sealing is sealed
// at its next start and keeps working. Real keyport-auth processes.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshPublicKeyFromKeyObject } from '../auth/ca/ssh';
import {
  loginUser,
  openClusterDb,
  runKeyportAuth,
  signUpUserInProcess,
  startLabCluster,
} from '../lab/cluster';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-at-rest-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Every byte under the data dir: database, WAL, CA files, admin identity. */
function everything(dataDir: string): Buffer {
  return Buffer.concat(
    readdirSync(dataDir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => readFileSync(join(entry.parentPath, entry.name))),
  );
}

describe('secrets at rest', () => {
  it('keeps no TOTP seed and no CA private key in plain form in the data dir, and a copy without the KEK opens nothing', async () => {
    const dataDir = join(work, 'sealed', 'data');
    await mkdir(join(work, 'sealed'));
    const cluster = await startLabCluster({ clusterName: 'sealed', dataDir });
    let seed: string;
    try {
      expect(existsSync(`${dataDir}.kek`)).toBe(true);
      const person = await signUpUserInProcess(cluster, join(work, 'home-lee'), 'lee', ['access']);
      seed = person.totpSecret;
      expect((await loginUser(cluster, join(work, 'home-lee'), person, ['--keystore', 'file'])).code).toBe(0);
      const db = openClusterDb(cluster, { readonly: true });
      const stored = db.prepare("select totp_secret from mfa_devices where user = 'lee'").get() as {
        totp_secret: string;
      };
      db.close();
      expect(stored.totp_secret).toMatch(/^kp-sealed:v1:/);
    } finally {
      await cluster.stop();
    }
    const bytes = everything(dataDir);
    expect(bytes.includes(Buffer.from(seed))).toBe(false);
    // The CA keys are in the database, sealed; the data dir has no CA files.
    expect(existsSync(join(dataDir, 'ca'))).toBe(false);
    const check = openClusterDb({ dataDir }, { readonly: true });
    const cas = check.prepare('select private_key from cluster_authorities').all() as {
      private_key: string;
    }[];
    check.close();
    // The SSH user CA, the TLS CA and the SSH host CA (nodes).
    expect(cas).toHaveLength(3);
    for (const { private_key: text } of cas) {
      expect(text).toMatch(/^kp-sealed:v1:/);
      expect(text).not.toContain('PRIVATE KEY');
    }

    // The data dir copied elsewhere, without its KEK: a new KEK is made there, and nothing opens with it.
    const copy = join(work, 'stolen', 'data');
    await cp(dataDir, copy, { recursive: true });
    const started = await runKeyportAuth([
      'start',
      '--data-dir',
      copy,
      '--listen',
      '127.0.0.1:0',
      '--cluster-name',
      'sealed',
    ]);
    expect(started.code).toBe(2);
    expect(started.stderr).toMatch(/does not open with this key-encryption key/);
    expect(started.stdout).not.toMatch(/listening on/);
  });

  it('refuses a key-encryption key file inside the data dir, at any depth', async () => {
    const dataDir = join(work, 'inside');
    for (const kek of [join(dataDir, 'kek'), join(dataDir, 'ca', 'deeper', 'kek')]) {
      const result = await runKeyportAuth([
        'start',
        '--data-dir',
        dataDir,
        '--kek-file',
        kek,
        '--listen',
        '127.0.0.1:0',
        '--cluster-name',
        'inside',
      ]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/keep the key-encryption key outside the data dir/);
      expect(existsSync(kek)).toBe(false);
    }
  });

  it('seals a data dir from before sealing at its next start, and its users still sign in', async () => {
    const dataDir = join(work, 'old', 'data');
    await mkdir(join(dataDir, 'ca'), { recursive: true, mode: 0o700 });
    // A CA key as an older keyport-auth left it: plain PKCS#8 PEM.
    const plain = generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    await writeFile(join(dataDir, 'ca', 'ssh-user-ca.key'), plain, { mode: 0o600 });
    let cluster = await startLabCluster({ clusterName: 'old', dataDir });
    expect(cluster.output()).toMatch(/imported the CA files of .* into the database/);
    const person = await signUpUserInProcess(cluster, join(work, 'home-old'), 'ola', ['access']);
    await cluster.stop();
    // …and a TOTP seed as it was stored then, in plain text.
    const db = openClusterDb({ dataDir }, { readonly: false });
    db.prepare("update mfa_devices set totp_secret = ? where user = 'ola'").run(person.totpSecret);
    db.close();

    cluster = await startLabCluster({ clusterName: 'old', dataDir });
    try {
      // The CA files were imported into the database, and the plain one sealed in place.
      expect(readFileSync(join(dataDir, 'ca', 'ssh-user-ca.key'), 'utf8')).toMatch(/^kp-sealed:v1:/);
      const check = openClusterDb(cluster, { readonly: true });
      const stored = check.prepare("select totp_secret from mfa_devices where user = 'ola'").get() as {
        totp_secret: string;
      };
      check.close();
      expect(stored.totp_secret).toMatch(/^kp-sealed:v1:/);
      const login = await loginUser(cluster, join(work, 'home-old'), person, ['--keystore', 'file']);
      expect(login.stderr).not.toMatch(/ERROR/);
      expect(login.code).toBe(0);
      // The SSH CA is the same key as before: the certificate's signing key is the plain one's.
      const profile = JSON.parse(
        readFileSync(join(work, 'home-old', 'profiles', `127.0.0.1_${cluster.port}.json`), 'utf8'),
      ) as { sshCertificate: string };
      await writeFile(join(work, 'ola-cert.pub'), `${profile.sshCertificate}\n`);
      const listing = execFileSync('ssh-keygen', ['-L', '-f', join(work, 'ola-cert.pub')], {
        encoding: 'utf8',
      });
      expect(listing).toContain(
        `Signing CA: ED25519 ${sshPublicKeyFromKeyObject(createPrivateKey(plain)).fingerprint}`,
      );
    } finally {
      await cluster.stop();
    }
  });
});
