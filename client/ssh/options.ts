// The system ssh's options for a connection keyport prepared (client/ssh/session.ts), shared by `keyport
// ssh` (cli/ssh.ts) and Keyport Connect's terminals (main/backend/terminals.ts): keyport's agent socket
// serves the key (never key bytes on disk), keyport's known_hosts holds the cluster's host CA
// (@cert-authority), StrictHostKeyChecking yes, and no other identity or configuration.
import { KeyportError } from '../../proto/errors';
import { NODE_ADDR } from '../../proto/resources/schema';
import type { PreparedSsh } from './session';

/**
 * HOST and PORT of a node's HOST:PORT, checked as the node resource is (NODE_ADDR) even though it comes from
 * keyport-auth: the host becomes an argument of ssh, and one starting with "-" would be read as an option.
 */
export function splitAddr(addr: string): { host: string; port: string } {
  const match = NODE_ADDR.exec(addr);
  if (!match?.[1] || !match[3])
    throw new KeyportError('INTERNAL', `The node's address "${addr}" is not HOST:PORT.`);
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port: match[3] };
}

/** ssh's options for a prepared connection: keyport's agent, keyport's known_hosts, nothing else. */
export function sshOptions(
  prepared: Pick<PreparedSsh, 'node' | 'knownHostsFile'>,
  agentSocket: string,
): string[] {
  const { port } = splitAddr(prepared.node.addr);
  return [
    '-F',
    '/dev/null',
    '-o',
    `IdentityAgent=${agentSocket}`,
    '-o',
    'IdentityFile=none',
    '-o',
    `UserKnownHostsFile=${prepared.knownHostsFile}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'UpdateHostKeys=no',
    '-o',
    `HostKeyAlias=${prepared.node.name}`,
    '-o',
    'CheckHostIP=no',
    '-o',
    'BatchMode=yes',
    '-p',
    port,
  ];
}
