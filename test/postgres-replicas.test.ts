// Several keyport-auth replicas on one PostgreSQL database: two real processes started at the same moment
// on an empty database create one set of CAs (sealed in the database under the KEK that each replica's
// own configuration names); each serves its own TLS certificate, signed by that CA and naming the
// cluster's public address, so a client that pinned one replica signs in through the other, and the
// super-admin identity of either works on both. A replica with another KEK is refused and writes nothing;
// a dump of the database holds no private key and no TOTP seed.
import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCluster } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { getClusterInfo, loginUser, runKeyportAuth, signUpUserInProcess } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { startLabPostgres } from '../lab/postgres';
import type { LabPostgres } from '../lab/postgres';
import { createReplicaSet, queryRows } from '../lab/replicas';
import type { ReplicaSet } from '../lab/replicas';

const PUBLIC_ADDR = 'auth.replicas.test:3025';
let work: string;
let postgres: LabPostgres;
let replicaA: LabCluster;
let replicaB: LabCluster;
let person: SignedUpUser;

let replicas: ReplicaSet;

const rows = <R extends pg.QueryResultRow>(text: string) => queryRows<R>(postgres.connString, text);

interface AdminIdentity {
  caCertPem: string;
  keyPem: string;
  certPem: string;
}

const identityOf = async (replica: LabCluster) =>
  JSON.parse(await readFile(join(replica.dataDir, 'admin-identity.json'), 'utf8')) as AdminIdentity;

/** The admin API of `replica`, called with a super-admin identity (possibly another replica's). */
async function clusterStatusWith(identity: AdminIdentity, replica: LabCluster) {
  const api = connectCluster({
    address: parseClusterAddress(replica.address),
    caPem: identity.caCertPem,
    caPin: replica.caPin,
    clientKeyPem: identity.keyPem,
    clientCertPem: identity.certPem,
  });
  try {
    return await api.admin.getClusterStatus({});
  } finally {
    api.close();
  }
}

/** The TLS certificate a replica serves. */
function servedCertificate(replica: LabCluster): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: replica.port,
      servername: 'localhost',
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(new X509Certificate(raw));
    });
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-replicas-'));
  postgres = await startLabPostgres();
  replicas = await createReplicaSet({
    work,
    connString: postgres.connString,
    clusterName: 'replicas',
    publicAddr: PUBLIC_ADDR,
  });
  // Both at the same moment, on an empty database.
  [replicaA, replicaB] = await Promise.all([replicas.start('a'), replicas.start('b')]);
});

afterAll(async () => {
  await replicaA?.stop();
  await replicaB?.stop();
  await postgres?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('two keyport-auth replicas on one PostgreSQL database', () => {
  it('end with one set of CAs: the same pin from both, one row per CA kind', async () => {
    expect(replicaB.caPin).toBe(replicaA.caPin);
    expect((await getClusterInfo(replicaA)).caPin).toBe(replicaA.caPin);
    expect((await getClusterInfo(replicaB)).caPin).toBe(replicaA.caPin);
    const cas = await rows<{ kind: string; private_key: string }>(
      'select kind, private_key from cluster_authorities order by kind',
    );
    expect(cas.map((ca) => ca.kind)).toEqual(['ssh_host', 'ssh_user', 'tls']);
    for (const ca of cas) expect(ca.private_key).toMatch(/^kp-sealed:v1:/);
    // The data dirs hold no CA files.
    for (const replica of [replicaA, replicaB]) expect(existsSync(join(replica.dataDir, 'ca'))).toBe(false);
  });

  it('serve each its own TLS certificate, signed by the cluster CA and naming the public address', async () => {
    const ca = new X509Certificate((await identityOf(replicaA)).caCertPem);
    const [certA, certB] = [await servedCertificate(replicaA), await servedCertificate(replicaB)];
    expect(certA.serialNumber).not.toBe(certB.serialNumber);
    expect(certA.publicKey.equals(certB.publicKey)).toBe(false);
    for (const served of [certA, certB]) {
      expect(served.verify(ca.publicKey)).toBe(true);
      expect(served.subjectAltName).toContain('DNS:auth.replicas.test');
    }
  });

  it('let a person who trusted replica A sign in through replica B', async () => {
    const home = join(work, 'home-rea');
    person = await signUpUserInProcess(replicaA, home, 'rea', ['access']);
    // The pin the client has is A's; it reaches B.
    const login = await loginUser({ ...replicaB, caPin: replicaA.caPin }, home, person, [
      '--keystore',
      'file',
    ]);
    expect(login.stderr).not.toMatch(/ERROR/);
    expect(login.code).toBe(0);
  });

  it("accept either replica's current super-admin identity on both, and not one a restart replaced", async () => {
    const [identityA, identityB] = [await identityOf(replicaA), await identityOf(replicaB)];
    expect((await clusterStatusWith(identityA, replicaB)).clusterName).toBe('replicas');
    expect((await clusterStatusWith(identityB, replicaA)).clusterName).toBe('replicas');

    await replicaA.stop();
    replicaA = await replicas.start('a');
    const renewedA = await identityOf(replicaA);
    expect(renewedA.certPem).not.toBe(identityA.certPem);
    await expect(clusterStatusWith(identityA, replicaB)).rejects.toThrow(
      /replaced when the auth service restarted/,
    );
    expect((await clusterStatusWith(renewedA, replicaB)).clusterName).toBe('replicas');
    expect((await clusterStatusWith(identityB, replicaA)).clusterName).toBe('replicas');
  });

  it('refuse a replica whose KEK is not the cluster one, which writes nothing', async () => {
    const snapshot = async () =>
      JSON.stringify(
        await Promise.all(
          [
            'cluster_authorities',
            'builtin_admins',
            'cluster_config',
            'users',
            'mfa_devices',
            'audit_events',
          ].map((table) => rows(`select * from ${table} order by 1`)),
        ),
      );
    const before = await snapshot();
    const dataDir = join(work, 'c');
    const result = await runKeyportAuth([
      'start',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--cluster-name',
      'replicas',
      '--config',
      replicas.config,
      '--kek-file',
      await replicas.kekFile('c.kek', randomBytes(32)),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /A CA key in the database does not open with this key-encryption key \(.*c\.kek\).*Every replica's key_encryption_key_file must hold the same key/,
    );
    expect(result.stdout).not.toMatch(/listening on/);
    expect(await snapshot()).toBe(before);
    expect(existsSync(join(dataDir, 'admin-identity.json'))).toBe(false);
  });

  it('leave no private key and no TOTP seed in a dump of the database', async () => {
    const pgDump = join(process.env.KEYPORT_PG_BIN ?? '/usr/lib/postgresql/15/bin', 'pg_dump');
    const dump = execFileSync(pgDump, ['--dbname', postgres.connString], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(dump).toContain('cluster_authorities');
    expect(dump).toContain('kp-sealed:v1:');
    expect(dump).not.toContain('PRIVATE KEY');
    expect(person.totpSecret).toMatch(/^[A-Z2-7]{16,}$/);
    expect(dump).not.toContain(person.totpSecret);
  });
});
