// keyport's own known_hosts (KEYPORT_HOME/known_hosts), which `keyport ssh` gives to ssh as its only one:
// an `@cert-authority * KEY` line per cluster, marked with the cluster's address, so that a node is trusted
// only with a host certificate of its cluster's host CA. Written atomically; a cluster's line is replaced
// when its host CA changes, other clusters' lines are kept.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyportError } from '../../proto/errors';

export const KNOWN_HOSTS_FILE = 'known_hosts';
const KEY_LINE = /^(ssh-ed25519|ecdsa-sha2-nistp256) [A-Za-z0-9+/]+={0,2}$/;

/** The line for one cluster's host CA. Pure. */
export function hostCaLine(clusterAddress: string, hostCaPublicKey: string): string {
  const key = hostCaPublicKey.trim().split(/\s+/).slice(0, 2).join(' ');
  if (!KEY_LINE.test(key)) throw new KeyportError('INTERNAL', 'The auth service sent no valid host CA key.');
  return `@cert-authority * ${key} keyport-cluster=${clusterAddress}`;
}

/** known_hosts text with `clusterAddress`'s line set to `line`, others kept. Pure. */
export function withHostCaLine(text: string, clusterAddress: string, line: string): string {
  const marker = ` keyport-cluster=${clusterAddress}`;
  const kept = text.split('\n').filter((existing) => existing.trim() !== '' && !existing.endsWith(marker));
  return `${[...kept, line].join('\n')}\n`;
}

/** Keeps the cluster's host CA line in KEYPORT_HOME/known_hosts; returns the file's path. */
export async function keepHostCa(
  home: string,
  clusterAddress: string,
  hostCaPublicKey: string,
): Promise<string> {
  const path = join(home, KNOWN_HOSTS_FILE);
  const line = hostCaLine(clusterAddress, hostCaPublicKey);
  const current = await readFile(path, 'utf8').catch(() => '');
  const next = withHostCaLine(current, clusterAddress, line);
  if (next !== current) {
    await mkdir(home, { recursive: true, mode: 0o700 });
    const temporary = `${path}.${randomBytes(4).toString('hex')}`;
    await writeFile(temporary, next, { mode: 0o644 });
    await rename(temporary, path);
  }
  return path;
}
