// `keyport-lab replicas [--dir DIR]`: a lab PostgreSQL and two keyport-auth replicas on it, on loopback, for
// a person to try (README "Several replicas on PostgreSQL"). Prints the addresses, the CA pin and the
// commands to sign in and to add a user; SIGINT or SIGTERM stops both replicas and PostgreSQL (each by the
// PID this process started) and removes the temporary folder, unless --dir named one to keep.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LabCluster } from './cluster';
import { startLabPostgres } from './postgres';
import type { LabPostgres } from './postgres';
import { createReplicaSet } from './replicas';

export async function runReplicasCommand(options: { dir?: string }): Promise<void> {
  const work = options.dir ? resolve(options.dir) : await mkdtemp(join(tmpdir(), 'keyport-lab-replicas-'));
  if (options.dir) await mkdir(work, { recursive: true, mode: 0o700 });
  let postgres: LabPostgres | undefined;
  const replicas: LabCluster[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.all(replicas.map((replica) => replica.stop('SIGTERM')));
      await postgres?.stop();
      if (!options.dir) await rm(work, { recursive: true, force: true });
    })());
  // A signal during the start-up waits for it to end (started or failed), so nothing is left behind.
  let startUp: Promise<unknown> = Promise.resolve();
  const onSignal = () => {
    void startUp
      .catch(() => undefined)
      .then(stop)
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(`keyport-lab: ${(error as Error).message}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  startUp = (async () => {
    postgres = await startLabPostgres();
    const set = await createReplicaSet({
      work,
      connString: postgres.connString,
      clusterName: 'lab-replicas',
      publicAddr: 'localhost:3025',
    });
    const started = await Promise.allSettled([set.start('a'), set.start('b')]);
    for (const result of started) if (result.status === 'fulfilled') replicas.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    // A config file per replica naming its data dir, for `keyport admin -c FILE` (it holds the conn string).
    for (const name of ['a', 'b']) {
      const yaml = `keyport:\n  data_dir: ${join(work, name)}\n  storage:\n    type: postgresql\n    conn_string: ${postgres.connString}\n`;
      await writeFile(join(work, `${name}.yaml`), yaml, { mode: 0o600 });
    }
  })();
  try {
    await startUp;
  } catch (error) {
    await stop();
    throw error;
  }

  if (stopping) return;
  const [a, b] = replicas as [LabCluster, LabCluster];
  const pgPort = (postgres as LabPostgres | undefined)?.port;
  const addresses = `${a.address},${b.address}`;
  process.stdout.write(
    [
      `PostgreSQL:  127.0.0.1:${pgPort} (database keyport)`,
      `Replica a:   ${a.address}`,
      `Replica b:   ${b.address}`,
      `CA pin:      ${a.caPin}`,
      `Folder:      ${work}${options.dir ? ' (kept)' : ' (removed at exit)'}`,
      '',
      'Add a user (prints a signup token), then sign up and log in through either replica:',
      `  keyport admin -c ${join(work, 'a.yaml')} users add NAME --roles access`,
      `  keyport signup --cluster ${a.address} --token TOKEN --ca-pin ${a.caPin}`,
      `  keyport login --cluster ${addresses} --user NAME --ca-pin ${a.caPin}`,
      '',
      'Ctrl-C stops both replicas and PostgreSQL.',
      '',
    ].join('\n'),
  );
}
