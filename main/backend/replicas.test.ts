// Keyport Connect with a cluster of two keyport-auth replicas (trusted as `keyport login --cluster A,B`
// leaves it): the cluster shows as one, under its first address, whichever replica answers; a login whose
// replica dies between its two steps shows "retrying on another auth server" as a notice prompt, which the
// OTP prompt of the login's restart replaces.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterAddress } from '../../client/cluster-trust';
import { ProfileStore } from '../../client/profiles';
import { RETRYING_NOTICE } from '../../client/replicas';
import { ensureTrustedCluster } from '../../client/session';
import { nextTotpCode, signUpUserInProcess } from '../../lab/cluster';
import type { LabCluster, SignedUpUser } from '../../lab/cluster';
import { startLabPostgres } from '../../lab/postgres';
import type { LabPostgres } from '../../lab/postgres';
import { createReplicaSet } from '../../lab/replicas';
import type { Prompt, PromptClosed } from '../../preload/contract';
import { createBackend } from './backend';

describe('Keyport Connect with two replicas of one cluster', () => {
  let work: string;
  let postgres: LabPostgres;
  let replicaA: LabCluster;
  let replicaB: LabCluster;
  let person: SignedUpUser;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyport-connect-replicas-'));
    postgres = await startLabPostgres();
    const replicas = await createReplicaSet({
      work,
      connString: postgres.connString,
      clusterName: 'replicated',
      publicAddr: 'auth.replicated.test:3025',
    });
    [replicaA, replicaB] = await Promise.all([replicas.start('a'), replicas.start('b')]);
    person = await signUpUserInProcess(replicaA, join(work, 'signup'), 'nora', ['access']);
  });

  afterAll(async () => {
    await replicaA?.stop();
    await replicaB?.stop();
    await postgres?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('signs in on B when A dies between the two steps, saying so in a notice the next prompt replaces; one cluster shows', async () => {
    const home = join(work, 'home');
    const profiles = new ProfileStore(home);
    const [addressA, addressB] = [
      parseClusterAddress(replicaA.address),
      parseClusterAddress(replicaB.address),
    ];
    // What `keyport login --cluster A,B` leaves for the app.
    await ensureTrustedCluster(profiles, addressA, {
      caPin: replicaA.caPin,
      prompt: { confirmCaPin: async () => false },
      replicas: [addressA, addressB],
    });
    const backend = createBackend({ profiles, keystoreKind: 'file', env: {} });
    await backend.ready;
    const events: (Prompt | ({ closed: true } & PromptClosed))[] = [];
    const answering: Promise<unknown>[] = [];
    backend.on('onPromptClosed', (closed) => events.push({ closed: true, ...closed }));
    backend.on('onPrompt', (prompt) => {
      events.push(prompt);
      if (prompt.kind !== 'otpCode') return;
      const first = events.filter((e) => 'kind' in e && e.kind === 'otpCode').length === 1;
      answering.push(
        (async () => {
          // Step 1 was answered by A; before step 2 leaves, A dies as a crash would.
          if (first) await replicaA.stop('SIGKILL');
          return backend.handlers['prompts.answer']({
            id: prompt.id,
            value: { kind: 'otpCode', code: nextTotpCode(person.totpSecret) },
          });
        })(),
      );
    });
    try {
      const login = await backend.handlers['auth.login']({
        address: replicaA.address,
        user: person.user,
        password: person.password,
      });
      expect(login).toMatchObject({
        ok: true,
        value: { address: replicaA.address, user: person.user, cluster: 'replicated' },
      });
      for (const answer of await Promise.all(answering)) expect(answer).toEqual({ ok: true, value: null });

      const [firstCode, closedFirst, notice, closedNotice, secondCode, closedSecond] = events;
      expect(events).toHaveLength(6);
      expect(firstCode).toMatchObject({ kind: 'otpCode' });
      expect(closedFirst).toEqual({ closed: true, id: (firstCode as Prompt).id, reason: 'answered' });
      expect(notice).toEqual({ kind: 'notice', message: RETRYING_NOTICE, id: expect.any(String) });
      // The restart's OTP prompt replaces the notice.
      expect(closedNotice).toEqual({ closed: true, id: (notice as Prompt).id, reason: 'finished' });
      expect(secondCode).toMatchObject({ kind: 'otpCode' });
      expect(closedSecond).toEqual({ closed: true, id: (secondCode as Prompt).id, reason: 'answered' });

      // One cluster, under its first address, although B answered (and is tried first next time).
      const clusters = await backend.handlers['clusters.list']();
      expect(clusters.ok && clusters.value).toEqual([
        expect.objectContaining({ address: replicaA.address, name: 'replicated', caPin: replicaA.caPin }),
      ]);
      expect(JSON.stringify(clusters)).not.toContain(replicaB.address);
      expect(await backend.handlers['auth.status']()).toMatchObject({
        ok: true,
        value: { address: replicaA.address, cluster: 'replicated', user: person.user },
      });
      const stored = JSON.parse(
        await readFile(
          join(home, 'clusters', `${replicaA.address.replace(/[^A-Za-z0-9.-]/g, '_')}.json`),
          'utf8',
        ),
      );
      expect(stored).toMatchObject({ lastReplica: replicaB.address });

      // A read from the app goes to B first, with A still dead.
      const devices = await backend.handlers['mfa.list']();
      expect(devices).toMatchObject({ ok: true, value: [{ name: 'otp', type: 'totp' }] });
    } finally {
      await backend.close();
    }
  });
});
