// keyport admin through the real CLI against a real keyport-auth: create -f (several documents, --force,
// invalid input that writes nothing), rm, edit with $EDITOR, users add|ls|rm|lock|unlock, audit, status.
// Every refusal is checked for its exit code, its message naming the field, and unchanged stored state.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { VERSION } from '../auth/server';
import type { ClusterApi } from '../client/api';
import {
  connectAsAdmin,
  loginUser,
  runAdmin,
  runKeyport,
  signUpUserInProcess,
  startLabCluster,
} from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';

interface Document {
  kind: string;
  version?: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
  status?: { created_ms?: number; locked_until_ms?: number; lock_reason?: string };
}

interface AuditLine {
  id: number;
  timeMs: number;
  type: string;
  actor: string;
  clientAddr: string;
  success: boolean;
  message: string;
  fields: Record<string, unknown>;
}

let cluster: LabCluster;
/** For looking at stored state before and after a refusal without a CLI process per look. */
let api: ClusterApi;
let work: string;
let fileCount = 0;
/** When this file began: every event it makes is from then on (no wall-clock window that load can outrun). */
const fileStartMs = Date.now();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-admin-'));
  cluster = await startLabCluster({ clusterName: 'admin-lab', dataDir: join(work, 'data') });
  api = await connectAsAdmin(cluster);
});

afterAll(async () => {
  api?.close();
  await cluster?.stop();
  await rm(work, { recursive: true, force: true });
});

async function yamlFile(text: string): Promise<string> {
  fileCount += 1;
  const path = join(work, `resources-${fileCount}.yaml`);
  await writeFile(path, text);
  return path;
}

/** A stored document through the admin API in this process, where `keyport admin get` is not the subject. */
async function stored(kind: 'user' | 'role' | 'cluster_auth_preference', name = ''): Promise<Document> {
  return JSON.parse((await api.admin.getResource({ kind, name })).json) as Document;
}

async function adminGet(ref: string): Promise<Document> {
  const result = await runAdmin(cluster, ['get', ref]);
  expect(result.code, result.stderr).toBe(0);
  return parseYaml(result.stdout) as Document;
}

/** Every stored user, role and the cap, exactly as the auth service holds them. */
async function storedState(): Promise<Record<string, string[]>> {
  const state: Record<string, string[]> = {};
  for (const kind of ['user', 'role', 'cluster_auth_preference']) {
    state[kind] = (await api.admin.listResources({ kind })).resources.map((resource) => resource.json);
  }
  return state;
}

async function auditEvents(args: string[] = []): Promise<AuditLine[]> {
  const result = await runAdmin(cluster, ['audit', '--json', ...args]);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditLine);
}

const role = (name: string, logins: string[]) =>
  `kind: role\nversion: v7\nmetadata:\n  name: ${name}\nspec:\n  allow:\n    logins: [${logins.join(', ')}]\n`;

describe('keyport admin create -f', () => {
  it('creates several roles and a user from one file of documents separated by ---', async () => {
    const file = await yamlFile(
      [
        role('dev', ['dev']),
        `kind: role\nmetadata:\n  name: ops\nspec:\n  options:\n    max_session_ttl: 8h\n  allow:\n    logins: [ops, '{{internal.logins}}']\n    node_labels:\n      env: [staging, prod]\n    rules:\n      - resources: [user]\n        verbs: [list, read]\n`,
        `kind: user\nversion: v2\nmetadata:\n  name: carol\nspec:\n  roles: [dev, ops]\n  traits:\n    logins: [carol]\n`,
      ].join('---\n'),
    );
    const result = await runAdmin(cluster, ['create', '-f', file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([
      'role "dev" has been created',
      'role "ops" has been created',
      'user "carol" has been created',
    ]);

    expect((await stored('role', 'dev')).spec).toEqual({ allow: { logins: ['dev'] } });
    expect((await adminGet('role/ops')).spec).toEqual({
      options: { max_session_ttl: '8h' },
      allow: {
        logins: ['ops', '{{internal.logins}}'],
        node_labels: { env: ['staging', 'prod'] },
        rules: [{ resources: ['user'], verbs: ['list', 'read'] }],
      },
    });
    const carol = await adminGet('user/carol');
    expect(carol.spec).toEqual({ roles: ['dev', 'ops'], traits: { logins: ['carol'] } });
    expect(carol.status?.created_ms).toBeGreaterThan(Date.now() - 60_000);
  });

  it('refuses to replace an existing role without --force (exit 9, "already exists") and changes nothing', async () => {
    const before = await storedState();
    const result = await runAdmin(cluster, ['create', '-f', await yamlFile(role('dev', ['someone-else']))]);
    expect(result.code).toBe(9);
    expect(result.stderr).toMatch(/Role "dev" already exists; use --force to replace it/);
    expect(await storedState()).toEqual(before);
  });

  it('replaces an existing role with --force', async () => {
    const result = await runAdmin(cluster, [
      'create',
      '-f',
      await yamlFile(role('dev', ['dev', 'deploy'])),
      '--force',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/role "dev" has been created or updated/);
    expect((await stored('role', 'dev')).spec).toEqual({ allow: { logins: ['dev', 'deploy'] } });
  });

  it('rejects invalid YAML with its file, line and column (exit 2) and writes none of the documents', async () => {
    const before = await storedState();
    const file = await yamlFile(
      `${role('fine-before-the-broken-one', ['x'])}---\nkind: role\nmetadata:\n  name: broken\nspec:\n  allow:\n    logins: [a, b\n`,
    );
    const result = await runAdmin(cluster, ['create', '-f', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`${file.replaceAll('.', '\\.')}: invalid YAML: .* at line 1[45], column \\d+`),
    );
    expect(result.stdout).toBe('');
    expect(await storedState()).toEqual(before);
  });

  it('writes no document of a batch whose later document the cluster refuses (exit 9)', async () => {
    await runAdmin(cluster, ['create', '-f', await yamlFile(role('already-here', ['x']))]);
    const before = await storedState();
    const file = await yamlFile(`${role('would-be-new', ['y'])}---\n${role('already-here', ['z'])}`);
    const result = await runAdmin(cluster, ['create', '-f', file]);
    expect(result.code).toBe(9);
    expect(result.stderr).toMatch(
      /documents\[1\]: Role "already-here" already exists; use --force to replace it/,
    );
    expect(await storedState()).toEqual(before);
  });

  it('rejects an unknown field (exit 2), naming its path and the allowed fields, and writes nothing', async () => {
    const before = await storedState();
    const file = await yamlFile(
      'kind: role\nversion: v7\nmetadata:\n  name: typo\nspec:\n  allow:\n    loginz: [root]\n',
    );
    const result = await runAdmin(cluster, ['create', '-f', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /spec\.allow\.loginz: unknown field; allowed fields: logins, node_labels, rules/,
    );
    expect(await storedState()).toEqual(before);
  });

  it.each([
    [
      'spec.allow.logins',
      'a string for a list',
      '  allow:\n    logins: root\n',
      /expected a list, got "root"/,
    ],
    [
      'spec.options.max_session_ttl',
      'a number for a duration',
      '  options:\n    max_session_ttl: 5\n',
      /invalid duration 5/,
    ],
    [
      'spec.options.require_session_mfa',
      'an unknown policy',
      '  options:\n    require_session_mfa: sometimes\n',
      /expected one of: true, false, hardware_key/,
    ],
  ])(
    'rejects a wrong type at %s (%s) with exit 2 naming the path, and writes nothing',
    async (path, _what, spec, message) => {
      const before = await storedState();
      const file = await yamlFile(`kind: role\nversion: v7\nmetadata:\n  name: wrong-type\nspec:\n${spec}`);
      const result = await runAdmin(cluster, ['create', '-f', file]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`${path}: `);
      expect(result.stderr).toMatch(message);
      expect(await storedState()).toEqual(before);
    },
  );

  it('rejects a user whose role does not exist (exit 2, field spec.roles[1]) and writes nothing', async () => {
    const before = await storedState();
    const file = await yamlFile(
      'kind: user\nversion: v2\nmetadata:\n  name: dave\nspec:\n  roles: [dev, no-such-role]\n',
    );
    const result = await runAdmin(cluster, ['create', '-f', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Role "no-such-role" does not exist/);
    expect(result.stderr).toMatch(/spec\.roles\[1\]/);
    expect(await storedState()).toEqual(before);
    expect((await runAdmin(cluster, ['get', 'user/dave'])).code).toBe(9);
  });
});

describe('keyport admin rm', () => {
  it('refuses to remove a role still assigned to a user, and keeps it', async () => {
    const result = await runAdmin(cluster, ['rm', 'role/ops']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/Role "ops" is assigned to user "carol"; remove it from every user first/);
    expect((await stored('role', 'ops')).metadata.name).toBe('ops');
  });

  it('removes a user, then the role nobody holds any more; both are gone (exit 9 on get)', async () => {
    const removedUser = await runAdmin(cluster, ['rm', 'user/carol']);
    expect(removedUser.code, removedUser.stderr).toBe(0);
    expect(removedUser.stdout).toMatch(/user "carol" has been deleted/);
    const removedRole = await runAdmin(cluster, ['rm', 'role/ops']);
    expect(removedRole.code, removedRole.stderr).toBe(0);
    expect(removedRole.stdout).toMatch(/role "ops" has been deleted/);

    const user = await runAdmin(cluster, ['get', 'user/carol']);
    expect(user.code).toBe(9);
    expect(user.stderr).toMatch(/User "carol" does not exist/);
    const gone = await runAdmin(cluster, ['get', 'role/ops']);
    expect(gone.code).toBe(9);
    expect(gone.stderr).toMatch(/Role "ops" does not exist/);
    expect((await runAdmin(cluster, ['rm', 'role/ops'])).code).toBe(9);
  });
});

describe('keyport admin edit cap', () => {
  const sedEditor = (script: string) => ({ EDITOR: `sed -i -e '${script}'`, VISUAL: undefined });

  it('saves what the editor changed', async () => {
    expect((await stored('cluster_auth_preference')).spec.device_trust).toEqual({ mode: 'off' });
    const result = await runAdmin(cluster, ['edit', 'cap'], {
      env: sedEditor('s/^    mode: off$/    mode: optional\\n    auto_enroll: true/'),
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/cluster auth preference has been updated/);
    expect((await adminGet('cap')).spec.device_trust).toEqual({ mode: 'optional', auto_enroll: true });
  });

  it('refuses an edit that writes an invalid value (exit 2, naming the field) and keeps the cap', async () => {
    const before = await storedState();
    const result = await runAdmin(cluster, ['edit', 'cap'], {
      env: sedEditor('s/^    mode: optional$/    mode: sometimes/'),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /spec\.device_trust\.mode: invalid value "sometimes"; expected one of: off, optional, required/,
    );
    expect(await storedState()).toEqual(before);
  });

  it('saves nothing when the editor fails or changes nothing', async () => {
    const before = await storedState();
    const failed = await runAdmin(cluster, ['edit', 'cap'], { env: { EDITOR: 'false', VISUAL: undefined } });
    expect(failed.code).toBe(130);
    expect(failed.stderr).toMatch(/The editor exited with 1; nothing was saved/);
    const unchanged = await runAdmin(cluster, ['edit', 'cap'], {
      env: { EDITOR: 'true', VISUAL: undefined },
    });
    expect(unchanged.code, unchanged.stderr).toBe(0);
    expect(unchanged.stdout).toMatch(/No changes/);
    expect(await storedState()).toEqual(before);
  });
});

describe('keyport admin users', () => {
  const usersLs = async () => {
    const result = await runAdmin(cluster, ['users', 'ls']);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  };
  const row = (listing: string, name: string) =>
    listing.split('\n').find((line) => line.startsWith(`${name} `));

  it('adds a user with a one-time signup token, lists it, and removes it', async () => {
    const added = await runAdmin(cluster, [
      'users',
      'add',
      'frank',
      '--roles',
      'access,dev',
      '--logins',
      'frank,ops',
    ]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/User "frank" has been created but requires a password/);
    expect(added.stdout).toMatch(/signup token: [A-Za-z0-9_-]{43}\n/);
    const expiry = Date.parse(/valid until (\S+):/.exec(added.stdout)?.[1] ?? '');
    expect(Math.abs(expiry - (Date.now() + 3_600_000))).toBeLessThan(60_000);
    expect(row(await usersLs(), 'frank')).toMatch(/^frank\s+access,dev\s+active$/);
    expect((await stored('user', 'frank')).spec).toEqual({
      roles: ['access', 'dev'],
      traits: { logins: ['frank', 'ops'] },
    });

    const again = await runAdmin(cluster, ['users', 'add', 'frank', '--roles', 'access']);
    expect(again.code).toBe(9);
    expect(again.stderr).toMatch(/User "frank" already exists/);
    const missingRole = await runAdmin(cluster, ['users', 'add', 'gus', '--roles', 'no-such-role']);
    expect(missingRole.code).toBe(2);
    expect(missingRole.stderr).toMatch(/Role "no-such-role" does not exist/);

    const removed = await runAdmin(cluster, ['users', 'rm', 'frank']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(row(await usersLs(), 'frank')).toBeUndefined();
    expect((await runAdmin(cluster, ['users', 'rm', 'frank'])).code).toBe(9);
  });

  it('locks a signed-up user for --ttl (login refused, exit 5) and unlocks them (login works)', async () => {
    const home = join(work, 'home-gina');
    // Signup is not the subject here (test/foundation.test.ts runs it through the CLI).
    const gina = await signUpUserInProcess(cluster, home, 'gina', ['access']);

    const locked = await runAdmin(cluster, [
      'users',
      'lock',
      'gina',
      '--ttl',
      '1h',
      '--reason',
      'lost laptop',
    ]);
    expect(locked.code, locked.stderr).toBe(0);
    expect(locked.stdout).toMatch(/User "gina" has been locked/);
    const until = Date.parse(
      /^gina\s+access\s+locked until (\S+)$/.exec(row(await usersLs(), 'gina') ?? '')?.[1] ?? '',
    );
    expect(Math.abs(until - (Date.now() + 3_600_000))).toBeLessThan(60_000);
    const status = (await stored('user', 'gina')).status;
    expect(status?.locked_until_ms).toBe(until);
    expect(status?.lock_reason).toBe('lost laptop');

    const refused = await loginUser(cluster, home, gina, ['--keystore', 'file']);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/locked/i);

    const unlocked = await runAdmin(cluster, ['users', 'unlock', 'gina']);
    expect(unlocked.code, unlocked.stderr).toBe(0);
    expect(row(await usersLs(), 'gina')).toMatch(/^gina\s+access\s+active$/);
    expect((await stored('user', 'gina')).status?.locked_until_ms).toBeUndefined();
    const login = await loginUser(cluster, home, gina, ['--keystore', 'file']);
    expect(login.code, login.stderr).toBe(0);
  });

  it('never shows a password hash in get user/NAME or get users', async () => {
    for (const ref of ['user/gina', 'users']) {
      const result = await runAdmin(cluster, ['get', ref]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/name: gina/);
      expect(result.stdout).not.toMatch(/argon2|scrypt|password|hash|\$[a-z0-9]+\$/i);
      expect(result.stdout).not.toMatch(/otp|secret|totp/i);
    }
  });

  it('rejects a lock --ttl that is not a duration and an unknown user', async () => {
    const badTtl = await runAdmin(cluster, ['users', 'lock', 'gina', '--ttl', 'forever']);
    expect(badTtl.code).toBe(2);
    expect(badTtl.stderr).toMatch(/--ttl/);
    expect((await stored('user', 'gina')).status?.locked_until_ms).toBeUndefined();
    const unknown = await runAdmin(cluster, ['users', 'lock', 'nobody', '--ttl', '1h']);
    expect(unknown.code).toBe(9);
    expect(unknown.stderr).toMatch(/User "nobody" does not exist/);
  });
});

describe('keyport admin audit', () => {
  it('filters by --type; each event has a time, the actor and the client address', async () => {
    const events = await auditEvents(['--type', 'user.create']);
    // carol came from a YAML document (create -f), frank and gina from users add: all are user.create.
    expect(events.map((event) => event.fields.user)).toEqual(['carol', 'frank', 'gina']);
    for (const event of events) {
      expect(event.type).toBe('user.create');
      expect(event.success).toBe(true);
      expect(event.actor).toBe('keyport-admin');
      expect(event.clientAddr).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(event.timeMs).toBeGreaterThanOrEqual(fileStartMs);
      expect(event.timeMs).toBeLessThanOrEqual(Date.now());
    }

    const text = await runAdmin(cluster, ['audit', '--type', 'user.lock']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.trim()).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z user\.lock\s+ok\s+keyport-admin\s+127\.0\.0\.1:\d+\s+lost laptop$/,
    );
  });

  it('records resource changes, signup, login failure and success, and refusals', async () => {
    const types = new Set((await auditEvents()).map((event) => event.type));
    for (const type of [
      'resource.create',
      'resource.update',
      'resource.delete',
      'user.create',
      'user.delete',
      'user.signup',
      'user.lock',
      'user.unlock',
      'user.login',
      'cert.issued',
    ])
      expect(types, type).toContain(type);
    const logins = await auditEvents(['--type', 'user.login']);
    expect(logins.some((event) => event.actor === 'gina' && !event.success)).toBe(true);
    expect(logins.some((event) => event.actor === 'gina' && event.success)).toBe(true);
  });

  it('filters by --since, as a duration (1h) or an ISO time', async () => {
    const all = await auditEvents();
    expect(await auditEvents(['--since', '1h'])).toEqual(all);

    const mark = new Date(Date.now() + 5);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await runAdmin(cluster, ['users', 'add', 'hank', '--roles', 'access'])).code).toBe(0);
    const since = await auditEvents(['--since', mark.toISOString()]);
    expect(since.map((event) => `${event.type} ${String(event.fields.user)}`)).toEqual(['user.create hank']);

    const bad = await runAdmin(cluster, ['audit', '--since', 'yesterday-ish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--since/);
  });
});

describe('the keyport command, as a newcomer meets it', () => {
  it('refuses an unknown audit type, naming the valid ones (exit 2), instead of printing nothing', async () => {
    const result = await runAdmin(cluster, ['audit', '--type', 'nonsense']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"nonsense" is not an audit event type; use one of: user.login,');
    expect(result.stdout).toBe('');
    // The server refuses it too, for clients other than this CLI.
    await expect(api.admin.listAuditEvents({ sinceMs: 0, type: 'nonsense', limit: 0 })).rejects.toMatchObject(
      {
        code: 'INVALID_ARGUMENT',
        fields: { fieldPath: 'type' },
      },
    );
  });

  it('says "Not signed in" with one code (exit 3) from every command that needs a session', async () => {
    const home = join(work, 'nobody-home');
    const answers = await Promise.all([
      runKeyport(['status'], { home }),
      runKeyport(['mfa', 'ls'], { home }),
      runKeyport(['admin', 'users', 'ls'], { home }),
    ]);
    for (const answer of answers) {
      expect(answer.code, answer.stderr).toBe(3);
      expect(answer.stderr).toMatch(/^ERROR: Not signed in: run `keyport login`/m);
    }
  });

  it('refuses a URL for --cluster, as the app does, instead of trimming it', async () => {
    const result = await runKeyport(['login', '--cluster', `http://${cluster.address}`, '--user', 'x'], {
      home: join(work, 'url-home'),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `"http://${cluster.address}" is a URL, not a cluster address: give HOST:PORT`,
    );
  });
});

describe('keyport admin status', () => {
  it('prints the cluster name, version, and the CA pin keyport-auth printed at start', async () => {
    const result = await runAdmin(cluster, ['status']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Cluster\s+admin-lab$/m);
    expect(result.stdout).toMatch(new RegExp(`^Version\\s+${VERSION.replaceAll('.', '\\.')}$`, 'm'));
    const pin = /^CA pin\s+(\S+)$/m.exec(result.stdout)?.[1];
    expect(pin).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(pin).toBe(cluster.caPin);
    expect(cluster.output()).toContain(`CA pin: ${pin}\n`);
    expect(result.stdout).toMatch(new RegExp(`^Public addr\\s+${cluster.address}$`, 'm'));
  });
});

describe('keyport admin get', () => {
  it('prints every role with get roles, one YAML document each, presets included', async () => {
    const result = await runAdmin(cluster, ['get', 'roles']);
    expect(result.code, result.stderr).toBe(0);
    const names = parseAllDocuments(result.stdout).map((doc) => (doc.toJS() as Document).metadata.name);
    expect(names).toEqual(expect.arrayContaining(['access', 'editor', 'auditor', 'dev']));
    expect(names).not.toContain('ops');
  });

  it('refuses a reference that is not a resource (exit 2)', async () => {
    const result = await runAdmin(cluster, ['get', 'widget/x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /"widget\/x" is not a resource: use cap, users, roles, nodes, oidc, user\/NAME, role\/NAME, node\/NAME or oidc\/NAME/,
    );
  });
});
