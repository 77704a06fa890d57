// keyport admin nodes: register a stock OpenSSH server as a node and write what it needs. The node's keys
// (its SSH host key and the X.509 key of its identity towards keyport-auth) are made here and stay in the
// output folder; keyport-auth signs their public halves (AdminService.RegisterNode).
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { KeyportError } from '../proto/errors';
import type { AdminMfaApi, ClusterApi } from '../client/api';
import { adminActionFor } from '../client/ceremonies/admin-action';
import type { RegisterNodeRequest } from '../proto/gen/keyport/v1/admin';
import type { AdminWork } from './admin';
import { formatClusterAddress } from '../client/cluster-trust';
import { formatSshPublicKey, sshPublicKeyParts } from '../client/keystore/session-key';

/** keyport-node in this checkout; `--node-command` names an installed one. */
export const DEFAULT_NODE_COMMAND = new URL('../bin/keyport-node.mjs', import.meta.url).pathname;

/** `env=prod,team=web` → labels; each entry KEY=VALUE. */
export function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const entry of (text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const equals = entry.indexOf('=');
    if (equals <= 0) {
      throw new KeyportError('INVALID_ARGUMENT', `Label "${entry}" is not KEY=VALUE.`, {
        fieldPath: '--labels',
      });
    }
    labels[entry.slice(0, equals)] = entry.slice(equals + 1);
  }
  return labels;
}

export interface NodeFiles {
  directory: string;
  sshdSnippet: string;
}

/** The sshd_config lines for a node whose files are in `directory`. */
export function sshdSnippet(options: {
  name: string;
  directory: string;
  nodeCommand: string;
  commandUser: string;
}): string {
  const { directory: dir } = options;
  return [
    `# Keyport node "${options.name}": include this in sshd_config (Include ${dir}/sshd_config.keyport).`,
    `HostKey ${dir}/ssh_host_ecdsa_key`,
    `HostCertificate ${dir}/ssh_host_ecdsa_key-cert.pub`,
    `TrustedUserCAKeys ${dir}/user_ca.pub`,
    '# Only certificates of the cluster: no authorized_keys files.',
    'AuthorizedKeysFile none',
    '# keyport-node asks keyport-auth about every certificate (RBAC, per-session MFA, device trust).',
    `# It and every folder above it must be owned by root and not writable by others.`,
    `AuthorizedPrincipalsCommand ${options.nodeCommand} principals ${dir}/node.json %u %t %k %s`,
    `AuthorizedPrincipalsCommandUser ${options.commandUser}`,
    '',
  ].join('\n');
}

export async function addNode(
  api: Pick<ClusterApi, 'address'>,
  /** The admin service for this registration, named before it is sent (one touch, MFA for admin actions). */
  writer: (request: RegisterNodeRequest) => Promise<Pick<AdminMfaApi, 'admin'>>,
  options: {
    name: string;
    addr: string;
    labels: Record<string, string>;
    out: string;
    authAddr?: string;
    nodeCommand: string;
    commandUser: string;
    force: boolean;
  },
): Promise<NodeFiles> {
  const hostKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const identityKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const request: RegisterNodeRequest = {
    name: options.name,
    addr: options.addr,
    labels: options.labels,
    hostPublicKey: formatSshPublicKey(sshPublicKeyParts(hostKey.publicKey)),
    identityPublicKeyPem: identityKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    force: options.force,
  };
  const registered = await (await writer(request)).admin.registerNode(request);
  const dir = resolve(options.out);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const write = async (file: string, text: string, mode: number) => {
    await writeFile(`${dir}/${file}`, text.endsWith('\n') ? text : `${text}\n`, { mode });
    await chmod(`${dir}/${file}`, mode);
  };
  await write(
    'ssh_host_ecdsa_key',
    hostKey.privateKey.export({ type: 'sec1', format: 'pem' }).toString(),
    0o600,
  );
  await write('ssh_host_ecdsa_key.pub', formatSshPublicKey(sshPublicKeyParts(hostKey.publicKey)), 0o644);
  await write('ssh_host_ecdsa_key-cert.pub', registered.hostCertificate, 0o644);
  await write('user_ca.pub', registered.userCaPublicKey, 0o644);
  await write('host_ca.pub', registered.hostCaPublicKey, 0o644);
  await write('tls-ca.crt', registered.tlsCaCertificatePem, 0o644);
  await write('identity.crt', registered.identityCertificatePem, 0o644);
  await write(
    'identity.key',
    identityKey.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    0o600,
  );
  const config = {
    node: options.name,
    auth_addr: options.authAddr ?? formatClusterAddress(api.address),
    tls_ca_file: `${dir}/tls-ca.crt`,
    identity_cert_file: `${dir}/identity.crt`,
    identity_key_file: `${dir}/identity.key`,
  };
  await write('node.json', JSON.stringify(config, null, 2), 0o644);
  const snippet = sshdSnippet({
    name: options.name,
    directory: dir,
    nodeCommand: options.nodeCommand,
    commandUser: options.commandUser,
  });
  await write('sshd_config.keyport', snippet, 0o644);
  return { directory: dir, sshdSnippet: snippet };
}

export function registerNodeAdminCommands(admin: Command, withApi: (work: AdminWork) => Promise<void>): void {
  const nodes = admin.command('nodes').description('Manage nodes (OpenSSH servers)');
  nodes
    .command('add')
    .description('Register a node and write its host certificate, CA keys, identity and sshd_config snippet')
    .requiredOption('--name <name>', 'the node name')
    .requiredOption('--addr <host:port>', 'where its sshd listens')
    .option('--labels <labels>', 'comma-separated KEY=VALUE labels, e.g. env=prod')
    .option('--out <dir>', 'folder for the node’s files', '.')
    .option('--auth-addr <host:port>', 'keyport-auth’s address as the node reaches it (default: this one)')
    .option('--node-command <path>', 'keyport-node as installed on the node', DEFAULT_NODE_COMMAND)
    .option('--command-user <user>', 'AuthorizedPrincipalsCommandUser (must read identity.key)', 'root')
    .option('--force', 'replace a registered node (its old identity stops working)')
    .action((options) =>
      withApi(async (api, writes) => {
        const register = (request: RegisterNodeRequest) =>
          writes([adminActionFor('admin', 'registerNode', request)]);
        const files = await addNode(api, register, {
          name: String(options.name),
          addr: String(options.addr),
          labels: parseLabels(options.labels as string | undefined),
          out: String(options.out),
          ...(options.authAddr ? { authAddr: String(options.authAddr) } : {}),
          nodeCommand: String(options.nodeCommand),
          commandUser: String(options.commandUser),
          force: options.force === true,
        });
        console.log(`Node "${options.name}" is registered; its files are in ${files.directory}.`);
        console.log(`Add to its sshd_config: Include ${files.directory}/sshd_config.keyport`);
      }),
    );
  nodes
    .command('ls')
    .description('List nodes')
    .action(() =>
      withApi(async (api) => {
        const { resources } = await api.admin.listResources({ kind: 'node' });
        console.log(`${'Node'.padEnd(24)}${'Address'.padEnd(24)}Labels`);
        for (const resource of resources) {
          const doc = JSON.parse(resource.json) as {
            spec: { addr: string };
            metadata: { labels?: Record<string, string> };
          };
          const labels = Object.entries(doc.metadata.labels ?? {})
            .map(([k, v]) => `${k}=${v}`)
            .join(',');
          console.log(`${resource.name.padEnd(24)}${doc.spec.addr.padEnd(24)}${labels}`);
        }
      }),
    );
}
