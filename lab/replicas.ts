// Several keyport-auth replicas on one lab PostgreSQL (lab/postgres.ts), as an operator deploys them: one
// config file naming the database, the same KEK deployed to each replica in its own 0600 file, a data dir
// per replica, one public address. Used by test/postgres-replicas*.test.ts.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { startLabCluster } from './cluster';
import type { LabCluster } from './cluster';

export interface ReplicaSetOptions {
  /** A folder the caller owns (and removes): config, KEK files and data dirs go in it. */
  work: string;
  connString: string;
  clusterName: string;
  publicAddr: string;
  /** More YAML appended to the config file (an auth_service section, say). */
  extraYaml?: string;
  /** Extra environment for every replica (a lab clock's). */
  env?: Record<string, string>;
}

export interface ReplicaSet {
  /** The config file every replica is started with. */
  config: string;
  /** The KEK file of replica `name` (the same key in each). */
  kekOf(name: string): string;
  /**
   * Starts replica `name` (data dir `<work>/<name>`, KEK `<work>/<name>.kek`): again after a stop, too.
   * `listen`: its address (127.0.0.1:0, a free port, by default).
   */
  start(name: string, listen?: string): Promise<LabCluster>;
  /** Writes a KEK file `<work>/<name>` holding `key`, as an operator would deploy it. */
  kekFile(name: string, key: Buffer): Promise<string>;
}

/** The `keyport.storage` section naming a PostgreSQL database. */
export function postgresStorageYaml(connString: string, poolSize = 4): string {
  return `keyport:\n  storage:\n    type: postgresql\n    conn_string: ${connString}\n    pool_size: ${poolSize}\n`;
}

export async function createReplicaSet(options: ReplicaSetOptions): Promise<ReplicaSet> {
  const config = join(options.work, 'auth.yaml');
  await writeFile(config, postgresStorageYaml(options.connString) + (options.extraYaml ?? ''));
  const key = randomBytes(32);
  const kekFile = async (name: string, contents: Buffer) => {
    const path = join(options.work, name);
    await writeFile(path, `${contents.toString('base64')}\n`, { mode: 0o600 });
    return path;
  };
  const kekOf = (name: string) => join(options.work, `${name}.kek`);
  return {
    config,
    kekOf,
    kekFile,
    async start(name: string, listen?: string) {
      await kekFile(`${name}.kek`, key);
      return startLabCluster({
        clusterName: options.clusterName,
        dataDir: join(options.work, name),
        ...(listen ? { listen } : {}),
        extraArgs: ['--config', config, '--kek-file', kekOf(name), '--public-addr', options.publicAddr],
        env: options.env,
      });
    },
  };
}

/** Rows from the database, on a connection of its own. */
export async function queryRows<R extends pg.QueryResultRow>(
  connString: string,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: connString });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}
