// The cluster's CAs in the database: many first starts at once on an empty database (SQLite, and a lab
// PostgreSQL) end with one set; a data dir's CA files are imported once; another KEK opens nothing.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLabPostgres } from '../lab/postgres';
import type { LabPostgres } from '../lab/postgres';
import { loadClusterAuthorities, loadOrCreateClusterAuthorities } from './authorities';
import { SecretBox } from './secrets';
import { openPostgresStore, openSqliteStore } from './storage/store';
import type { Store } from './storage/store';

let work: string;
let postgres: LabPostgres;
const box = new SecretBox(randomBytes(32));
const options = (dataDir: string) => ({ sealer: box, kekFile: '/kek', dataDir, now: Date.now() });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-authorities-'));
  postgres = await startLabPostgres();
});
afterAll(async () => {
  await postgres?.stop();
  await rm(work, { recursive: true, force: true });
});

const backends: [string, () => Promise<() => Promise<Store>>][] = [
  [
    'sqlite',
    async () => {
      const dataDir = await mkdtemp(join(work, 'sqlite-'));
      return () => openSqliteStore(dataDir);
    },
  ],
  [
    'postgresql',
    async () => {
      const connString = await postgres.createDatabase();
      return () => openPostgresStore({ connString, poolSize: 2, statementTimeoutMs: 10_000 });
    },
  ],
];

describe.each(backends)('cluster authorities on %s', (_name, fresh) => {
  it('gives eight replicas starting at once on an empty database one set of CAs', async () => {
    const open = await fresh();
    // Migrations first (SQLite in one data dir has one keyport-auth: its migrations take no lock), then
    // eight stores race to create the CAs.
    const first = await open();
    const stores = [first, ...(await Promise.all(Array.from({ length: 7 }, () => open())))];
    try {
      const loaded = await Promise.all(
        stores.map((store, index) =>
          loadOrCreateClusterAuthorities(store, 'prod', options(join(work, `none-${index}`))),
        ),
      );
      expect(new Set(loaded.map((a) => a.tls.pin)).size).toBe(1);
      expect(new Set(loaded.map((a) => a.ssh.publicKey.fingerprint)).size).toBe(1);
      const rows = await stores[0]!.listAuthorities();
      expect(rows.map((row) => row.kind)).toEqual(['ssh_user', 'tls']);
      for (const row of rows) {
        expect(row.private_key).toMatch(/^kp-sealed:v1:/);
        expect(row.private_key).not.toContain('PRIVATE KEY');
      }
      // Loading again changes nothing; another KEK is refused, naming the cause.
      const again = await loadClusterAuthorities(stores[1]!, 'prod', options(work));
      expect(again?.tls.pin).toBe(loaded[0]!.tls.pin);
      await expect(
        loadClusterAuthorities(stores[1]!, 'prod', {
          sealer: new SecretBox(randomBytes(32)),
          kekFile: '/other',
        }),
      ).rejects.toThrow(/does not open with this key-encryption key \(\/other\).*same key/);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it("imports a data dir's CA files (sealing a plain one in place) and keeps their keys", async () => {
    const open = await fresh();
    const dataDir = join(work, `legacy-${_name}`);
    await mkdir(join(dataDir, 'ca'), { recursive: true, mode: 0o700 });
    const plain = generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    await writeFile(join(dataDir, 'ca', 'ssh-user-ca.key'), plain, { mode: 0o600 });
    const store = await open();
    try {
      const imported = await loadOrCreateClusterAuthorities(store, 'prod', options(dataDir));
      expect(imported.ssh.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()).toBe(plain);
      expect(await readFile(join(dataDir, 'ca', 'ssh-user-ca.key'), 'utf8')).toMatch(/^kp-sealed:v1:/);
      const reloaded = await loadClusterAuthorities(store, 'prod', options(dataDir));
      expect(reloaded?.ssh.publicKey.fingerprint).toBe(imported.ssh.publicKey.fingerprint);
      expect(reloaded?.tls.pin).toBe(imported.tls.pin);
      // Another data dir of the same database holding another cluster's CA key is refused, naming both
      // pins where it can; the database keeps its CAs, and the same files start again once moved away.
      const other = join(work, `other-cluster-${_name}`);
      await mkdir(join(other, 'ca'), { recursive: true, mode: 0o700 });
      const foreign = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
      await writeFile(join(other, 'ca', 'ssh-user-ca.key'), foreign, { mode: 0o600 });
      const before = JSON.stringify(await store.listAuthorities());
      await expect(loadOrCreateClusterAuthorities(store, 'prod', options(other))).rejects.toMatchObject({
        code: 'PRECONDITION_FAILED',
        message: expect.stringMatching(
          new RegExp(
            `${other}/ca are not the cluster's CAs in the database \\(CA pin ${imported.tls.pin}\\)`,
          ),
        ),
      });
      expect(JSON.stringify(await store.listAuthorities())).toBe(before);
      // The importing data dir itself still starts: its files are the database's.
      const again = await loadOrCreateClusterAuthorities(store, 'prod', options(dataDir));
      expect(again.tls.pin).toBe(imported.tls.pin);
      await rm(join(other, 'ca'), { recursive: true });
      expect((await loadOrCreateClusterAuthorities(store, 'prod', options(other))).tls.pin).toBe(
        imported.tls.pin,
      );
    } finally {
      await store.close();
    }
  });
});
