// `keyport login` interrupted with Ctrl-C while it waits for the OTP code, once its session key is in the
// file keystore: a first Ctrl-C gives up the question and the login unwinds, taking its key back; a second
// one, right after, exits at once but not before that key is gone. Either way: exit 130, no key file, no
// profile. A real keyport-auth (password + OTP) and `keyport` processes.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../cli/exit-codes';
import { repoRoot, signUpUser, startLabCluster } from '../lab/cluster';
import type { CliResult, LabCluster, SignedUpUser } from '../lab/cluster';

describe('keyport login interrupted with Ctrl-C', () => {
  let cluster: LabCluster;
  let work: string;
  let person: SignedUpUser;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyport-login-interrupted-'));
    cluster = await startLabCluster({ clusterName: 'interrupted' });
    person = await signUpUser(cluster, join(work, 'signup'), 'ivy', ['access']);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const keyFiles = (home: string) => (existsSync(join(home, 'keys')) ? readdirSync(join(home, 'keys')) : []);

  /** Runs `keyport login` to its OTP question, waits for its session key file, then sends `interrupts` SIGINTs. */
  async function interruptedLogin(home: string, interrupts: number): Promise<CliResult> {
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin/keyport.mjs'),
        'login',
        '--cluster',
        cluster.address,
        '--user',
        person.user,
        '--ca-pin',
        cluster.caPin,
        '--password-stdin',
        '--keystore',
        'file',
      ],
      { cwd: repoRoot, env: { ...process.env, KEYPORT_HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const asked = new Promise<void>((resolve) =>
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('Enter an OTP code')) resolve();
      }),
    );
    const exited = new Promise<CliResult>((resolve) =>
      child.once('exit', (code) => resolve({ code, stdout, stderr })),
    );
    // The password on stdin, which stays open: the OTP question waits.
    child.stdin.write(`${person.password}\n`);
    await Promise.race([asked, exited]);
    expect(stderr, stderr).toContain('Enter an OTP code');
    // The key is written while the question waits: the interrupt comes once it is there.
    await expect.poll(() => keyFiles(home).length, { timeout: 20_000 }).toBe(1);
    for (let sent = 0; sent < interrupts; sent++) {
      child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return exited;
  }

  it('one Ctrl-C at the OTP question cancels the login and takes its session key back', async () => {
    const home = join(work, 'once');
    const result = await interruptedLogin(home, 1);
    expect(result.code, result.stderr).toBe(EXIT.cancelled);
    expect(result.stderr).toContain('ERROR: Login cancelled: nothing was saved.');
    expect(keyFiles(home)).toEqual([]);
    expect(existsSync(join(home, 'profiles'))).toBe(false);
  });

  it('two Ctrl-C in a row exit at once, and leave no session key behind', async () => {
    const home = join(work, 'twice');
    const result = await interruptedLogin(home, 2);
    expect(result.code, result.stderr).toBe(EXIT.cancelled);
    expect(keyFiles(home)).toEqual([]);
    expect(existsSync(join(home, 'profiles'))).toBe(false);
  });
});
