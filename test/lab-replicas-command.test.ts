// `keyport-lab replicas`, run as a person runs it: it prints two replica addresses and one CA pin, both
// replicas answer GetClusterInfo with that pin, and Ctrl-C (SIGINT) stops every process it started and
// removes its temporary folder.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getClusterInfo, repoRoot } from '../lab/cluster';
import { processGone } from '../lab/postgres';

let lab: ChildProcess | undefined;

/** Every process below `pid` (children, their children, ...), read from /proc. */
function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

afterAll(() => {
  // Only on failure: the command still running is stopped as a person would stop it.
  if (lab?.pid && lab.exitCode === null && lab.signalCode === null) process.kill(lab.pid, 'SIGINT');
});

describe('keyport-lab replicas', () => {
  it('starts PostgreSQL and two replicas with one CA pin, and Ctrl-C stops them all', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/keyport-lab.mjs'), 'replicas'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    lab = child;
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolveExit) =>
      child.once('exit', (code) => resolveExit(code)),
    );

    await expect.poll(() => output, { timeout: 100_000, interval: 100 }).toMatch(/Ctrl-C stops/);
    const addressA = /Replica a:\s+(127\.0\.0\.1:\d+)/.exec(output)?.[1];
    const addressB = /Replica b:\s+(127\.0\.0\.1:\d+)/.exec(output)?.[1];
    const caPin = /CA pin:\s+(sha256:[0-9a-f]{64})/.exec(output)?.[1];
    const folder = /Folder:\s+(\S+)/.exec(output)?.[1];
    expect(addressA && addressB && caPin && folder, output).toBeTruthy();
    expect(output).toContain(`keyport login --cluster ${addressA},${addressB} --user NAME --ca-pin ${caPin}`);
    expect(output).toContain(`keyport admin -c ${join(folder!, 'a.yaml')} users add NAME --roles access`);

    for (const [address, name] of [
      [addressA!, 'a'],
      [addressB!, 'b'],
    ] as const) {
      const info = await getClusterInfo({ address, caPin: caPin!, dataDir: join(folder!, name) });
      expect(info.caPin).toBe(caPin);
    }

    // Both replicas and the postmaster with its backends.
    const started = descendantsOf(child.pid!);
    expect(started.length).toBeGreaterThanOrEqual(3);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(started.filter((pid) => !processGone(pid))).toEqual([]);
    expect(existsSync(folder!)).toBe(false);
  });
});
