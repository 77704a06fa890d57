// A name that resolves to several loopback addresses, as DNS round robin or a hosts file gives one to an
// operator's replicas: lines added to /etc/hosts for one test and removed again. The system resolver
// (getaddrinfo, which grpc-js and the client ask) reads the file at each lookup, and Debian's host.conf says
// `multi on`, so every line of the name is an answer. Needs root, as the lab's PostgreSQL does; each name is
// the test's own (random), so nothing else resolves it. Other processes read the file meanwhile, so it is
// never rewritten in place: the lines are appended, and removed by cutting the file back to its length
// before them, or, when another test appended after them, by renaming a copy without them over it (a
// reader sees the file with them or without them, never a partial one).
import { randomBytes } from 'node:crypto';
import { appendFile, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';

const HOSTS = '/etc/hosts';

export interface HostsName {
  name: string;
  remove(): Promise<void>;
}

/** A fresh name `<prefix>-<random>.test` resolving to `addresses`, in their order. */
export async function addHostsName(prefix: string, addresses: string[]): Promise<HostsName> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}.test`;
  const marker = `# keyport-lab ${name}`;
  const before = await readFile(HOSTS);
  const block = Buffer.from(
    `${before.length > 0 && before[before.length - 1] !== 0x0a ? '\n' : ''}${addresses
      .map((address) => `${address} ${name} ${marker}\n`)
      .join('')}`,
  );
  await appendFile(HOSTS, block);
  return {
    name,
    async remove() {
      const now = await readFile(HOSTS);
      const at = now.length - block.length;
      if (at >= 0 && now.subarray(at).equals(block)) {
        await truncate(HOSTS, at);
        return;
      }
      // Something was appended after ours: our lines alone go, the file replaced whole by a rename (a bind
      // mount cannot be renamed over: then one write).
      const kept = now
        .toString('utf8')
        .split('\n')
        .filter((line) => !line.endsWith(marker))
        .join('\n');
      const next = `${HOSTS}.keyport-lab-${randomBytes(4).toString('hex')}`;
      await writeFile(next, kept, { mode: (await stat(HOSTS)).mode & 0o777 });
      try {
        await rename(next, HOSTS);
      } catch {
        await rm(next, { force: true });
        await writeFile(HOSTS, kept);
      }
    },
  };
}
