// keyport-auth as an operator runs it: what it prints at start, the files it keeps and their modes,
// SIGTERM, restarts on the same data dir, --config, and a kill -9 in the middle of `keyport admin create`.
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  keyportCliPath,
  openClusterDb,
  repoRoot,
  runAdmin,
  runKeyportAuth,
  startKeyportAuth,
  startLabCluster,
} from '../lab/cluster';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-auth-process-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const startArgs = (dataDir: string, clusterName: string) => [
  'start',
  '--data-dir',
  dataDir,
  '--listen',
  '127.0.0.1:0',
  '--cluster-name',
  clusterName,
];

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('one data dir: start, files, SIGTERM, restart', () => {
  const dataDir = () => join(work, 'main');

  it('prints exactly "CA pin: sha256:<hex>" then "listening on 127.0.0.1:<real port>", and serves there', async () => {
    const auth = await startKeyportAuth(startArgs(dataDir(), 'proc'), { dataDir: dataDir() });
    try {
      const match = /^CA pin: (sha256:[0-9a-f]{64})\nlistening on 127\.0\.0\.1:(\d+)\n$/.exec(auth.stdout());
      expect(match, auth.stdout()).not.toBeNull();
      const port = Number(match?.[2]);
      expect(port).toBeGreaterThan(0);
      expect(port).toBe(auth.port);
      expect(auth.stderr()).toBe('');

      // The pin is the SHA-256 of the TLS CA's SubjectPublicKeyInfo.
      const identity = JSON.parse(await readFile(join(dataDir(), 'admin-identity.json'), 'utf8')) as {
        caCertPem: string;
      };
      const ca = new X509Certificate(identity.caCertPem);
      const spki = ca.publicKey.export({ type: 'spki', format: 'der' });
      expect(match?.[1]).toBe(`sha256:${createHash('sha256').update(spki).digest('hex')}`);

      const status = await runAdmin(auth, ['status']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^Cluster\s+proc$/m);
      expect(status.stdout).toMatch(new RegExp(`^Public addr\\s+127\\.0\\.0\\.1:${port}$`, 'm'));
      const added = await runAdmin(auth, ['users', 'add', 'ivy', '--roles', 'access']);
      expect(added.code, added.stderr).toBe(0);
    } finally {
      await auth.stop();
    }
  });

  it('keeps the CA keys sealed in the owner-only database, and the admin identity at 0600', async () => {
    // The CAs live in the database (sealed), not in files: no ca/ folder in a new data dir.
    await expect(stat(join(dataDir(), 'ca'))).rejects.toThrow(/ENOENT/);
    const db = openClusterDb({ dataDir: dataDir() });
    const cas = db.prepare('select kind, private_key from cluster_authorities order by kind').all() as {
      kind: string;
      private_key: string;
    }[];
    db.close();
    expect(cas.map((ca) => ca.kind)).toEqual(['ssh_host', 'ssh_user', 'tls']);
    for (const ca of cas) expect(ca.private_key).toMatch(/^kp-sealed:v1:/);
    expect(await modeOf(join(dataDir(), 'admin-identity.json'))).toBe(0o600);
    for (const file of ['keyport.db', 'keyport.db-wal', 'keyport.db-shm']) {
      const mode = await modeOf(join(dataDir(), file)).catch(() => undefined);
      if (file === 'keyport.db') expect(mode).toBeDefined();
      if (mode !== undefined) expect(mode & 0o077, `${file} is ${mode.toString(8)}`).toBe(0);
    }
  });

  it('stops on SIGTERM by itself, with exit code 0', async () => {
    const auth = await startKeyportAuth(startArgs(dataDir(), 'proc'), { dataDir: dataDir() });
    const signalled = Date.now();
    const code = await auth.stop('SIGTERM');
    expect(code).toBe(0);
    // It gives open calls 2 s, then ends them; the bound is generous for a loaded machine, and catches a
    // stop that hangs on an open connection.
    expect(Date.now() - signalled).toBeLessThan(20_000);
    expect(auth.process.signalCode).toBeNull();
  });

  it('restarts on the same data dir with the same CA pin, users and admin identity', async () => {
    const pins: string[] = [];
    for (let round = 0; round < 2; round++) {
      const auth = await startKeyportAuth(startArgs(dataDir(), 'proc'), { dataDir: dataDir() });
      try {
        pins.push(auth.caPin);
        const users = await runAdmin(auth, ['users', 'ls']);
        expect(users.code, users.stderr).toBe(0);
        expect(users.stdout).toMatch(/^ivy\s+access\s+active$/m);
        const status = await runAdmin(auth, ['status']);
        expect(status.stdout).toMatch(new RegExp(`^CA pin\\s+${auth.caPin}$`, 'm'));
      } finally {
        expect(await auth.stop()).toBe(0);
      }
    }
    expect(pins[1]).toBe(pins[0]);
  });

  it('refuses to start on that data dir under another --cluster-name, and says why', async () => {
    const result = await runKeyportAuth(startArgs(dataDir(), 'other'));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/This data dir belongs to cluster "proc", not "other"\./);
    expect(result.stdout).not.toMatch(/listening on/);
  });
});

describe('keyport-auth start --config', () => {
  it('takes the data dir, listen_addr and cluster_name from the file', async () => {
    const dataDir = join(work, 'from-config');
    const config = join(work, 'keyport-auth.yaml');
    await writeFile(
      config,
      `version: v1\nkeyport:\n  data_dir: ${dataDir}\nauth_service:\n  enabled: true\n  listen_addr: 127.0.0.1:0\n  cluster_name: from-config\n  lockout:\n    max_attempts: 3\n    window: 10m\n    duration: 15m\n`,
    );
    const auth = await startKeyportAuth(['start', '--config', config], { dataDir });
    try {
      expect(auth.stdout()).toMatch(/^CA pin: sha256:[0-9a-f]{64}\nlistening on 127\.0\.0\.1:[1-9]\d*\n$/);
      const status = await runAdmin(auth, ['status']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^Cluster\s+from-config$/m);
      expect(await modeOf(join(dataDir, 'admin-identity.json'))).toBe(0o600);
    } finally {
      expect(await auth.stop()).toBe(0);
    }
  });

  it.each([
    ['auth_service.listen_adr', 'auth_service:\n  listen_adr: 127.0.0.1:0\n'],
    ['proxy_service', 'proxy_service:\n  enabled: true\n'],
    ['auth_service.lockout.attempts', 'auth_service:\n  lockout:\n    attempts: 3\n'],
    ['auth_service.authentication.secnd_factor', 'auth_service:\n  authentication:\n    secnd_factor: otp\n'],
  ])('refuses an unknown key, naming %s, and creates no CA', async (path, yaml) => {
    const dataDir = join(work, `refused-${path}`);
    const config = join(work, `refused-${path}.yaml`);
    await writeFile(config, yaml);
    const result = await runKeyportAuth([...startArgs(dataDir, 'refused'), '--config', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`(^|: )${path.replaceAll('.', '\\.')}: `, 'm'));
    expect(result.stderr).toMatch(/Unrecognized key|unknown field/);
    expect(result.stdout).toBe('');
    // The CAs would be in the database (when the refusal came after opening it): none there.
    const opened = await stat(join(dataDir, 'keyport.db')).then(
      () => true,
      () => false,
    );
    if (opened) {
      const db = openClusterDb({ dataDir });
      expect(db.prepare('select count(*) as n from cluster_authorities').get()).toEqual({ n: 0 });
      db.close();
    }
  });

  it('binds nothing when it refuses the authentication section: the data dir then starts under another name', async () => {
    const dataDir = join(work, 'refused-authentication');
    const config = join(work, 'refused-authentication.yaml');
    await writeFile(config, 'auth_service:\n  authentication:\n    second_factor: webauthn\n');
    const refused = await runKeyportAuth([...startArgs(dataDir, 'first-try'), '--config', config]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /auth_service\.authentication\.webauthn: required when the second factors include webauthn/,
    );

    const auth = await startKeyportAuth(startArgs(dataDir, 'second-try'), { dataDir });
    try {
      const status = await runAdmin(auth, ['status']);
      expect(status.stdout).toMatch(/^Cluster\s+second-try$/m);
    } finally {
      await auth.stop();
    }
  });
});

describe('kill -9 during keyport admin create -f of many documents', () => {
  it('leaves the batch all written or not at all, and a sound database', async () => {
    const dataDir = join(work, 'crash');
    const count = 300;
    const expected = (index: number) => ({
      kind: 'role',
      version: 'v7',
      metadata: { name: `crash-${index}`, description: `role ${index} of ${count}` },
      spec: {
        options: { max_session_ttl: `${index + 1}h` },
        allow: { logins: [`login-${index}`], node_labels: { team: [`t-${index}`] } },
      },
    });
    const file = join(work, 'many-roles.yaml');
    await writeFile(
      file,
      Array.from({ length: count }, (_, index) => JSON.stringify(expected(index))).join('\n---\n'),
    );

    const cluster = await startLabCluster({ clusterName: 'crash', dataDir });
    const cli = spawn(
      process.execPath,
      [keyportCliPath, 'admin', '--data-dir', dataDir, 'create', '-f', file],
      {
        cwd: repoRoot,
        env: { ...process.env, KEYPORT_HOME: join(work, 'crash-home') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const cliExited = new Promise<number | null>((resolve) => cli.once('exit', resolve));
    // Kill the auth service about when the batch arrives; wherever the kill lands, the batch is one
    // transaction, so after a restart it is there whole or not at all.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(await cluster.stop('SIGKILL')).toBeNull();
    expect(cluster.process.signalCode).toBe('SIGKILL');
    const cliCode = await cliExited;

    const restarted = await startLabCluster({ clusterName: 'crash', dataDir });
    try {
      const db = openClusterDb(restarted);
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        const rows = db.prepare("SELECT doc_json FROM roles WHERE name LIKE 'crash-%'").all() as {
          doc_json: string;
        }[];
        expect([0, count]).toContain(rows.length);
        if (cliCode === 0) expect(rows).toHaveLength(count);
        for (const row of rows) {
          const role = JSON.parse(row.doc_json) as ReturnType<typeof expected>;
          expect(role).toEqual(expected(Number(role.metadata.name.slice('crash-'.length))));
        }
      } finally {
        db.close();
      }
    } finally {
      await restarted.stop();
    }
  });
});
