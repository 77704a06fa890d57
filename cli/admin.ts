// keyport admin: resources, users, locks, audit and status. Credentials come from the signed-in profile,
// or with --data-dir (or -c, the keyport-auth config file naming the data dir) from the auth host's own
// super-admin identity (like tctl on an auth server).
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { KeyportError } from '../proto/errors';
import type { CreateUserRequest, Resource } from '../proto/gen/keyport/v1/admin';
import type { AdminAction } from '../proto/gen/keyport/v1/user';
import { connectCluster } from '../client/api';
import type { AdminMfaApi, ClusterApi } from '../client/api';
import { adminActionFor, authorizeAdminActions } from '../client/ceremonies/admin-action';
import { parseClusterAddress, pinOf } from '../client/cluster-trust';
import type { ProfileStore } from '../client/profiles';
import { connectAsProfile, notSignedIn, webauthnOrigin } from '../client/session';
import { parseDurationSeconds } from './format';
import { registerDeviceAdminCommands } from './devices';
import { registerNodeAdminCommands } from './nodes';
import { pivPrompts } from './piv-prompts';
import type { Prompter } from './prompts';
import { adminMfaPrompts } from './admin-mfa';
import { withRelogin } from './relogin';
import { AUDIT_EVENT_TYPES, isAuditType, unknownAuditTypeMessage } from '../proto/audit-types';

interface AdminIdentityFile {
  cluster: string;
  address: string;
  caCertPem: string;
  keyPem: string;
  certPem: string;
}

/** What an admin command works with: the API, and the one touch its writes need. */
export type AdminWork = (api: ClusterApi, writes: AdminWrites) => Promise<void>;

/**
 * The admin services for exactly these writes, named before any is made: where the cluster enforces MFA
 * for admin actions, one touch of a security key answers for all of them. The auth host's super-admin
 * identity (--data-dir, -c) is exempt and asks nothing.
 */
export type AdminWrites = (actions: AdminAction[]) => Promise<AdminMfaApi>;

async function connectAdmin(
  profiles: ProfileStore,
  dataDir: string | undefined,
  prompter: Prompter,
): Promise<{ api: ClusterApi; writes: AdminWrites }> {
  if (dataDir) {
    const path = join(dataDir, 'admin-identity.json');
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new KeyportError(
        'NOT_FOUND',
        `Cannot read ${path} (${error.code}): run this on the auth host, as the user that runs keyport-auth.`,
      );
    });
    const identity = JSON.parse(text) as AdminIdentityFile;
    const api = connectCluster({
      address: parseClusterAddress(identity.address),
      caPem: identity.caCertPem,
      caPin: pinOf(new X509Certificate(identity.caCertPem)),
      clientKeyPem: identity.keyPem,
      clientCertPem: identity.certPem,
    });
    return { api, writes: async () => api };
  }
  const profile = await profiles.getProfile();
  if (!profile) throw notSignedIn('run `keyport login`, or pass -c FILE or --data-dir on the auth host');
  const trusted = await profiles.getTrustedCluster(parseClusterAddress(profile.address));
  // On stderr, as every line meant for the person: stdout stays the YAML or table asked for.
  const api = await connectAsProfile(profiles, profile, undefined, {
    notice: (message) => console.error(message),
    piv: pivPrompts(prompter),
  });
  const context = {
    origin: trusted ? webauthnOrigin(trusted) : `https://${profile.address}`,
    prompts: adminMfaPrompts(prompter),
  };
  return { api, writes: (actions) => authorizeAdminActions(api, actions, context) };
}

/**
 * The data dir a keyport-auth config file names (`keyport.data_dir`), where that replica writes its
 * super-admin identity at every start: whatever the storage (SQLite there, or PostgreSQL), the identity
 * is in the data dir, one per replica, and every replica accepts it (table builtin_admins).
 */
export async function dataDirFromAuthConfig(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `Cannot read the config file ${file}: ${error.code ?? error}`,
      {
        fieldPath: '--config',
      },
    );
  });
  let parsed: unknown;
  try {
    parsed = (await yaml()).parse(text);
  } catch (error) {
    throw new KeyportError('INVALID_ARGUMENT', `${file}: invalid YAML: ${(error as Error).message}`, {
      fieldPath: '--config',
    });
  }
  const dataDir = (parsed as { keyport?: { data_dir?: unknown } } | null)?.keyport?.data_dir;
  if (typeof dataDir !== 'string' || !dataDir) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `${file} names no keyport.data_dir: pass --data-dir DIR, the data dir keyport-auth runs with.`,
      { fieldPath: 'keyport.data_dir' },
    );
  }
  return dataDir;
}

function parseRef(ref: string): { kind: string; name: string } {
  const plural: Record<string, string> = {
    users: 'user',
    roles: 'role',
    nodes: 'node',
    node: 'node',
    oidc: 'oidc',
  };
  if (plural[ref]) return { kind: plural[ref] as string, name: '' };
  if (ref === 'cap' || ref === 'cluster_auth_preference')
    return { kind: 'cluster_auth_preference', name: '' };
  const match = /^(user|role|node|oidc|cap|cluster_auth_preference)\/(.+)$/.exec(ref);
  if (!match) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `"${ref}" is not a resource: use cap, users, roles, nodes, oidc, user/NAME, role/NAME, node/NAME or oidc/NAME.`,
    );
  }
  return {
    kind: match[1] === 'cap' ? 'cluster_auth_preference' : (match[1] as string),
    name: match[2] as string,
  };
}

// yaml and the resource schemas (zod) load when an admin command needs them, not at every CLI start.
const yaml = () => import('yaml');
const resourceDocuments = () => import('../client/resource-documents');

async function resourceYaml(resource: Resource): Promise<string> {
  return (await yaml()).stringify(JSON.parse(resource.json), { lineWidth: 0 });
}

export function registerAdminCommands(root: Command, profiles: ProfileStore, prompter: Prompter): void {
  const admin = root
    .command('admin')
    .description('Administer the cluster (authorised by your roles’ rules)')
    .option('--data-dir <dir>', 'use the auth host’s super-admin identity from this data dir')
    .option(
      '-c, --config <file>',
      'use the super-admin identity in the data dir this keyport-auth config file names',
    );

  /** Runs `work` with an admin connection, closing it afterwards. */
  const withApi = async (work: AdminWork) => {
    const { dataDir, config } = admin.opts<{ dataDir?: string; config?: string }>();
    // --data-dir wins, as it does for keyport-auth.
    const hostDir = dataDir ?? (config ? await dataDirFromAuthConfig(config) : undefined);
    const run = async () => {
      const { api, writes } = await connectAdmin(profiles, hostDir, prompter);
      try {
        await work(api, writes);
      } finally {
        api.close();
      }
    };
    // As the profile, a session below today's key policy relogs in with the card and runs once more.
    await (hostDir ? run() : withRelogin(profiles, run, prompter));
  };

  registerDeviceAdminCommands(admin, withApi);
  registerNodeAdminCommands(admin, withApi);

  admin
    .command('status')
    .description('Cluster name, version and CA pin')
    .action(() =>
      withApi(async (api) => {
        const status = await api.admin.getClusterStatus({});
        console.log(`Cluster      ${status.clusterName}`);
        console.log(`Version      ${status.version}`);
        console.log(`Public addr  ${status.publicAddr}`);
        console.log(`CA pin       ${status.caPin}`);
        console.log(`Users        ${status.users}`);
        console.log(`Roles        ${status.roles}`);
      }),
    );

  admin
    .command('get <resource>')
    .description('Print cap, users, roles, nodes, oidc, user/NAME, role/NAME, node/NAME or oidc/NAME as YAML')
    .action((ref: string) =>
      withApi(async (api) => {
        const { kind, name } = parseRef(ref);
        const resources = name
          ? [await api.admin.getResource({ kind, name })]
          : kind === 'cluster_auth_preference'
            ? [await api.admin.getResource({ kind, name: '' })]
            : (await api.admin.listResources({ kind })).resources;
        console.log((await Promise.all(resources.map(resourceYaml))).join('---\n').trimEnd());
      }),
    );

  admin
    .command('create')
    .description('Create resources from a YAML file (several documents separated by ---)')
    .requiredOption('-f, --file <file>', 'YAML file, or - for standard input')
    .option('--force', 'replace resources that exist')
    .action((options) =>
      withApi(async (_api, writes) => {
        const source = options.file === '-' ? 'stdin' : options.file;
        const text =
          options.file === '-'
            ? await readAllStdin()
            : await readFile(options.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
                throw new KeyportError('INVALID_ARGUMENT', `Cannot read ${options.file}: ${error.code}`);
              });
        // Every document is validated (and its CA files read) before anything is sent; the cluster then
        // writes them all in one transaction, or none.
        const documents = await (
          await resourceDocuments()
        ).loadResourceDocuments(text, source, options.file === '-' ? '.' : options.file);
        const request = {
          documentsJson: documents.map((document) => JSON.stringify(document)),
          force: Boolean(options.force),
        };
        // Every document in one call, so one touch (MFA for admin actions) covers the whole file.
        const admin = await writes([adminActionFor('admin', 'createResources', request)]);
        const { resources } = await admin.admin.createResources(request);
        for (const created of resources) {
          const what =
            created.kind === 'cluster_auth_preference'
              ? 'cluster auth preference'
              : `${created.kind} "${created.name}"`;
          console.log(`${what} has been ${options.force ? 'created or updated' : 'created'}`);
        }
      }),
    );

  admin
    .command('rm <resource>')
    .description('Delete user/NAME or role/NAME')
    .action((ref: string) =>
      withApi(async (_api, writes) => {
        const { kind, name } = parseRef(ref);
        if (!name) throw new KeyportError('INVALID_ARGUMENT', 'Name the resource: user/NAME or role/NAME.');
        const request = { kind, name };
        const api = await writes([adminActionFor('admin', 'deleteResource', request)]);
        await api.admin.deleteResource(request);
        console.log(`${kind} "${name}" has been deleted`);
      }),
    );

  admin
    .command('edit <resource>')
    .description('Edit cap or role/NAME in $EDITOR; the result is validated before it is saved')
    .action((ref: string) =>
      withApi(async (api, writes) => {
        const { kind, name } = parseRef(ref);
        const before = await resourceYaml(await api.admin.getResource({ kind, name }));
        const dir = await mkdtemp(join(tmpdir(), 'keyport-edit-'));
        const file = join(dir, `${kind}.yaml`);
        try {
          await writeFile(file, before, { mode: 0o600 });
          const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
          const result = spawnSync(`${editor} "${file}"`, { shell: true, stdio: 'inherit' });
          if (result.status !== 0)
            throw new KeyportError(
              'CANCELLED',
              `The editor exited with ${result.status}; nothing was saved.`,
            );
          const after = await readFile(file, 'utf8');
          if (after === before) {
            console.log('No changes.');
            return;
          }
          const documents = await (await resourceDocuments()).loadResourceDocuments(after, file, file);
          const [edited] = documents;
          if (documents.length !== 1 || !edited) {
            throw new KeyportError(
              'INVALID_ARGUMENT',
              'Keep exactly one resource in the file; nothing was saved.',
            );
          }
          if (edited.kind !== kind || (name && edited.metadata.name !== name)) {
            throw new KeyportError(
              'INVALID_ARGUMENT',
              `The edit changed what the resource is (${edited.kind}/${edited.metadata.name}); edit keeps ${ref}. Nothing was saved; use create for a new resource.`,
              { fieldPath: edited.kind !== kind ? 'kind' : 'metadata.name' },
            );
          }
          const request = { documentsJson: documents.map((d) => JSON.stringify(d)), force: true };
          // The touch is asked once the edit is known: the answer is for this very document.
          const writer = await writes([adminActionFor('admin', 'createResources', request)]);
          await writer.admin.createResources(request);
          console.log(
            `${kind === 'cluster_auth_preference' ? 'cluster auth preference' : `${kind} "${name}"`} has been updated`,
          );
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
    );

  const users = admin.command('users').description('Manage users');
  users
    .command('add <name>')
    .description('Create a user and print a one-time signup token (valid for 1 hour)')
    .requiredOption('--roles <roles>', 'comma-separated roles, e.g. access,editor')
    .option('--logins <logins>', 'comma-separated logins, kept in the internal.logins trait')
    .action((name: string, options) =>
      withApi(async (_api, writes) => {
        const request: CreateUserRequest = {
          name,
          roles: String(options.roles)
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean),
          traits: options.logins ? { logins: String(options.logins) } : {},
        };
        const admin = await writes([adminActionFor('admin', 'createUser', request)]);
        const created = await admin.admin.createUser(request);
        console.log(
          `User "${created.user}" has been created but requires a password. Share this signup token with the user,`,
        );
        console.log(`valid until ${new Date(created.tokenExpiresMs).toISOString()}:`);
        console.log('');
        console.log(`  signup token: ${created.signupToken}`);
        console.log('');
        console.log(`  keyport signup --cluster ADDR --token ${created.signupToken}`);
      }),
    );
  users
    .command('ls')
    .description('List users')
    .action(() =>
      withApi(async (api) => {
        const { resources } = await api.admin.listResources({ kind: 'user' });
        console.log(`${'User'.padEnd(24)}${'Roles'.padEnd(32)}Status`);
        for (const resource of resources) {
          const doc = JSON.parse(resource.json);
          const lockedUntil: number | undefined = doc.status?.locked_until_ms;
          const lockedOut: { client_addr: string; until_ms: number }[] = doc.status?.locked_out ?? [];
          const status = [
            lockedUntil && lockedUntil > Date.now()
              ? lockedUntil >= Number.MAX_SAFE_INTEGER
                ? 'locked until unlocked'
                : `locked until ${new Date(lockedUntil).toISOString()}`
              : 'active',
            ...lockedOut.map(
              (l) => `locked out from ${l.client_addr} until ${new Date(l.until_ms).toISOString()}`,
            ),
          ].join('; ');
          console.log(
            `${resource.name.padEnd(24)}${(doc.spec.roles as string[]).join(',').padEnd(32)}${status}`,
          );
        }
      }),
    );
  users
    .command('rm <name>')
    .description('Delete a user; their certificates stop working at once')
    .action((name: string) =>
      withApi(async (_api, writes) => {
        const request = { kind: 'user', name };
        const api = await writes([adminActionFor('admin', 'deleteResource', request)]);
        await api.admin.deleteResource(request);
        console.log(`User "${name}" has been deleted`);
      }),
    );
  const lockUser = (name: string, options: { ttl?: string; reason?: string }) =>
    withApi(async (_api, writes) => {
      const request = {
        name,
        durationSeconds: options.ttl ? parseDurationSeconds(options.ttl, '--ttl') : 0,
        reason: options.reason ?? '',
      };
      const api = await writes([adminActionFor('admin', 'lockUser', request)]);
      await api.admin.lockUser(request);
      console.log(`User "${name}" has been locked`);
    });
  users
    .command('lock <name>')
    .description('Lock a user: no login, and their certificates stop working')
    .option('--ttl <duration>', 'lock for this long (default: until unlocked)')
    .option('--reason <text>', 'why, for the audit log')
    .action((name: string, options: { ttl?: string; reason?: string }) => lockUser(name, options));
  // The seed's shape (tctl lock --user=NAME --message=... --ttl=...): a user is the one target there is.
  admin
    .command('lock')
    .description('Lock a user at once: no login, and every certificate of theirs stops working')
    .requiredOption('--user <name>', 'the user to lock (an SSO user too: their IdP login is refused)')
    .option('--message <text>', 'why, for the audit log')
    .option('--ttl <duration>', 'lock for this long (default: until unlocked)')
    .action((options: { user: string; message?: string; ttl?: string }) =>
      lockUser(options.user, { ...(options.ttl ? { ttl: options.ttl } : {}), reason: options.message ?? '' }),
    );
  users
    .command('unlock <name>')
    .description('Unlock a user')
    .action((name: string) =>
      withApi(async (_api, writes) => {
        const request = { name };
        const api = await writes([adminActionFor('admin', 'unlockUser', request)]);
        await api.admin.unlockUser(request);
        console.log(`User "${name}" has been unlocked`);
      }),
    );

  admin
    .command('audit')
    .description('Show the audit log')
    .option('--since <when>', 'a duration ago (1h) or an ISO time')
    .option('--type <type>', `only this event type: ${AUDIT_EVENT_TYPES.join(', ')}`)
    .option('--limit <n>', 'at most this many of the latest events', '200')
    .option('--json', 'one JSON object per line')
    .action((options) =>
      withApi(async (api) => {
        // A typo must not look like an empty log: refused, naming the types there are.
        if (options.type !== undefined && !isAuditType(options.type)) {
          throw new KeyportError('INVALID_ARGUMENT', unknownAuditTypeMessage(options.type), {
            fieldPath: '--type',
          });
        }
        let sinceMs = 0;
        if (options.since) {
          sinceMs = /^[\d.]+(ns|us|µs|ms|s|m|h)/.test(options.since)
            ? Date.now() - parseDurationSeconds(options.since, '--since') * 1000
            : /^\d{4}-\d{2}-\d{2}/.test(options.since)
              ? Date.parse(options.since)
              : Number.NaN;
          if (Number.isNaN(sinceMs))
            throw new KeyportError('INVALID_ARGUMENT', '--since: use a duration (1h) or an ISO time.');
        }
        const { events } = await api.admin.listAuditEvents({
          sinceMs,
          type: options.type ?? '',
          limit: parseLimit(options.limit),
        });
        for (const event of events) {
          if (options.json) {
            console.log(
              JSON.stringify({ ...event, fields: JSON.parse(event.fieldsJson), fieldsJson: undefined }),
            );
          } else {
            const outcome = event.success ? 'ok  ' : 'FAIL';
            console.log(
              `${new Date(event.timeMs).toISOString()} ${event.type.padEnd(16)} ${outcome} ${event.actor.padEnd(16)} ${event.clientAddr.padEnd(22)} ${event.message}`,
            );
          }
        }
      }),
    );
}

function parseLimit(text: string): number {
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
    throw new KeyportError('INVALID_ARGUMENT', `--limit: "${text}" is not a whole number from 1 to 100000.`, {
      fieldPath: '--limit',
    });
  }
  return limit;
}

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
