// Versioned migrations, applied in name order by Kysely's Migrator, one set for SQLite and PostgreSQL
// (the few type differences are in dialects.ts). Never edit a released migration: add the next one. On
// PostgreSQL the Migrator holds an advisory lock and runs them in one transaction, so replicas starting
// together apply each exactly once.
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { sql } from 'kysely';
import { idColumn, idType } from './dialects';

const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('spec_json', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text')
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .addColumn('locked_until_ms', 'bigint')
        .addColumn('lock_reason', 'text')
        .execute();
      await db.schema
        .createTable('roles')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('doc_json', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('cluster_config')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value_json', 'text', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('signup_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('pending_totp_secret', 'text')
        .execute();
      await db.schema
        .createTable('mfa_devices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('added_ms', 'bigint', (c) => c.notNull())
        .addColumn('last_used_ms', 'bigint')
        .addColumn('totp_secret', 'text')
        .addColumn('totp_last_step', 'bigint')
        .addColumn('webauthn_credential_id', 'text')
        .addColumn('webauthn_public_key', 'text')
        .addColumn('webauthn_sign_count', 'bigint')
        .addColumn('webauthn_aaguid', 'text')
        .addColumn('passkey', 'integer', (c) => c.notNull().defaultTo(0))
        .addUniqueConstraint('mfa_devices_user_name', ['user', 'name'])
        .execute();
      await db.schema
        .createIndex('mfa_devices_credential')
        .on('mfa_devices')
        .column('webauthn_credential_id')
        .execute();
      await db.schema
        .createTable('challenges')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user', 'text')
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('payload_json', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('login_failures')
        .addColumn('id', idType(db), idColumn(db))
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('time_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('login_failures_user')
        .on('login_failures')
        .columns(['user', 'time_ms'])
        .execute();
      await db.schema
        .createTable('audit_events')
        .addColumn('id', idType(db), idColumn(db))
        .addColumn('time_ms', 'bigint', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('client_addr', 'text', (c) => c.notNull())
        .addColumn('success', 'integer', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('fields_json', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_events_time').on('audit_events').column('time_ms').execute();
    },
    async down(db: Kysely<unknown>) {
      for (const table of [
        'audit_events',
        'login_failures',
        'challenges',
        'mfa_devices',
        'signup_tokens',
        'cluster_config',
        'roles',
        'users',
      ]) {
        await sql`drop table if exists ${sql.table(table)}`.execute(db);
      }
    },
  },
  '0002_webauthn_user_handle': {
    // The WebAuthn user handle: random, stable per user, never the name (WebAuthn §14.6.1). Passwordless
    // login finds the user by it.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('users').addColumn('webauthn_user_handle', 'text').execute();
      await db.schema
        .createIndex('users_webauthn_user_handle')
        .unique()
        .on('users')
        .column('webauthn_user_handle')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await sql`drop index if exists users_webauthn_user_handle`.execute(db);
      await db.schema.alterTable('users').dropColumn('webauthn_user_handle').execute();
    },
  },
  '0003_login_attempts_and_rate_limits': {
    // Login attempts per (user name, client address): pending while a password is being checked, failed
    // once it was wrong. They replace the per-user failure list, which locked the right person out when
    // checks were in flight and let one address lock a user for everyone. Names are kept as typed (bounded
    // at the API edge), so names of no user are throttled exactly like real ones.
    // Rate limits: one fixed-window counter per key ("addr:…", "user:…"), shared by replicas.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('login_attempts')
        .addColumn('id', idType(db), idColumn(db))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('client_addr', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('time_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('login_attempts_name_addr')
        .on('login_attempts')
        .columns(['name', 'client_addr'])
        .execute();
      await db.schema
        .createTable('rate_limits')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('window_start_ms', 'bigint', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.dropTable('login_failures').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('rate_limits').execute();
      await db.schema.dropTable('login_attempts').execute();
      await db.schema
        .createTable('login_failures')
        .addColumn('id', idType(db), idColumn(db))
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('time_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0004_trusted_devices': {
    // Device trust: the inventory of devices (registered by an admin, or by self-enrollment), each bound
    // to one TPM attestation key once enrolled; and single-use enrollment tokens, stored hashed.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('trusted_devices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('os_type', 'text', (c) => c.notNull())
        .addColumn('asset_tag', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('enroll_status', 'text', (c) => c.notNull())
        .addColumn('owner', 'text')
        .addColumn('credential_id', 'text')
        .addColumn('ak_public', 'text')
        .addColumn('ek_fingerprint', 'text')
        .addColumn('ek_certificate', 'text')
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .addColumn('enrolled_ms', 'bigint')
        .addColumn('locked', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('lock_reason', 'text')
        .addUniqueConstraint('trusted_devices_asset_tag_os', ['asset_tag', 'os_type'])
        .execute();
      await db.schema
        .createIndex('trusted_devices_credential')
        .unique()
        .on('trusted_devices')
        .column('credential_id')
        .execute();
      await db.schema
        .createTable('device_enroll_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('device_enroll_tokens').execute();
      await db.schema.dropTable('trusted_devices').execute();
    },
  },
  '0005_cluster_authorities': {
    // The cluster's CAs in the database, so that every replica on it signs with the same ones: one row per
    // kind ('ssh_user', 'tls'), the private key sealed under the key-encryption key (auth/secrets.ts), the
    // TLS CA's certificate beside it. The primary key is what makes two first starts agree on one set.
    // The super-admin identities that replicas issued at their starts: one current serial per replica.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('cluster_authorities')
        .addColumn('kind', 'text', (c) => c.primaryKey())
        .addColumn('private_key', 'text', (c) => c.notNull())
        .addColumn('certificate', 'text')
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('builtin_admins')
        .addColumn('replica', 'text', (c) => c.primaryKey())
        .addColumn('serial', 'text', (c) => c.notNull())
        .addColumn('issued_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('builtin_admins').execute();
      await db.schema.dropTable('cluster_authorities').execute();
    },
  },
  '0006_pop_nonces': {
    // The nonces of per-call proofs of possession (proto/pop.ts), each kept until its proof can no longer
    // be accepted by any replica; the primary key is what refuses a proof seen twice, on every replica.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('pop_nonces')
        .addColumn('nonce', 'text', (c) => c.primaryKey())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('pop_nonces_expires').on('pop_nonces').column('expires_ms').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('pop_nonces').execute();
    },
  },
  '0007_nodes': {
    // Nodes (stock OpenSSH servers): the resource document, and the serial of the one client identity
    // keyport-node may call with (replaced when the node is registered again). The single-use SSH
    // certificates of per-session MFA: spent by the first connection that offers them, which the row
    // then names, so sshd's two calls for one connection pass and any other connection is refused.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('nodes')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('doc_json', 'text', (c) => c.notNull())
        .addColumn('identity_serial', 'text')
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('session_certificates')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('login', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .addColumn('connection', 'text')
        .addColumn('spent_ms', 'bigint')
        .execute();
      await db.schema
        .createIndex('session_certificates_expires')
        .on('session_certificates')
        .column('expires_ms')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('session_certificates').execute();
      await db.schema.dropTable('nodes').execute();
    },
  },
  '0008_node_connections': {
    // The sshd connections keyport-auth has allowed, each kept a few minutes: sshd runs keyport-node twice
    // per connection, and only the first allowed answer is audited (`session.connect`), on any replica.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('node_connections')
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('connection', 'text', (c) => c.notNull())
        .addColumn('first_ms', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('node_connections_pk', ['node', 'connection'])
        .execute();
      await db.schema
        .createIndex('node_connections_first')
        .on('node_connections')
        .column('first_ms')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('node_connections').execute();
    },
  },
  '0009_web_sessions': {
    // Sessions of the web UI (auth/web/): the cookie's token is stored only as its SHA-256. A session names
    // its user, how it signed in and until when; its device fields stay null until a trusted device
    // approves it (then the session is trusted, with that device's identity).
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('web_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('login_method', 'text', (c) => c.notNull())
        .addColumn('mfa_verified', 'integer', (c) => c.notNull())
        .addColumn('client_addr', 'text', (c) => c.notNull())
        .addColumn('user_agent', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .addColumn('device_id', 'text')
        .addColumn('device_asset_tag', 'text')
        .addColumn('device_trusted_ms', 'bigint')
        .execute();
      await db.schema.createIndex('web_sessions_user').on('web_sessions').column('user').execute();
      await db.schema.createIndex('web_sessions_expires').on('web_sessions').column('expires_ms').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('web_sessions').execute();
    },
  },
  '0010_oidc_connectors': {
    // OIDC connectors (kind oidc): the document without its client secret, and the secret sealed under the
    // key-encryption key (auth/secrets.ts, context `oidc-client-secret:NAME`), so a copy of the database
    // alone cannot act as keyport-auth towards the IdP.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('oidc_connectors')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('doc_json', 'text', (c) => c.notNull())
        .addColumn('client_secret', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('oidc_connectors').execute();
    },
  },
  '0011_web_session_approvals': {
    // The web-session approval ceremony (auth/web-approval.ts): a request a web session makes for a trusted
    // device. Its web token (the keyport:// link's) and, once a device has approved it, its confirmation
    // token (the confirm URL's) are stored only as their SHA-256; each is spent once by a conditional
    // UPDATE … RETURNING, and both are bound to the one web session that asked.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('web_session_approvals')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('web_session_id', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .addColumn('token_used', 'integer', (c) => c.notNull())
        .addColumn('confirm_hash', 'text')
        .addColumn('confirm_expires_ms', 'bigint')
        .addColumn('confirm_used', 'integer', (c) => c.notNull())
        .addColumn('device_id', 'text')
        .addColumn('device_asset_tag', 'text')
        .execute();
      await db.schema
        .createIndex('web_session_approvals_user')
        .on('web_session_approvals')
        .column('user')
        .execute();
      await db.schema
        .createIndex('web_session_approvals_expires')
        .on('web_session_approvals')
        .column('expires_ms')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('web_session_approvals').execute();
    },
  },
  '0012_sso_requests': {
    // SSO logins in flight (auth/sso/): the request a client started (the state's hash, nonce and PKCE
    // verifier, the client's keys and loopback address), spent once by the IdP's callback, then its
    // one-time code (only as its hash) spent once by the client holding the request's key. And the mark of
    // an SSO user: the connector (and IdP subject) that created it; a local user has none.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('sso_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('state_hash', 'text', (c) => c.notNull().unique())
        .addColumn('connector', 'text', (c) => c.notNull())
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('pkce_verifier', 'text', (c) => c.notNull())
        .addColumn('client_redirect_url', 'text', (c) => c.notNull())
        .addColumn('keys_json', 'text', (c) => c.notNull())
        .addColumn('client_addr', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint', (c) => c.notNull())
        .addColumn('stage', 'text', (c) => c.notNull())
        .addColumn('code_hash', 'text', (c) => c.unique())
        .addColumn('code_expires_ms', 'bigint')
        .addColumn('user', 'text')
        .addColumn('identity_json', 'text')
        .execute();
      await db.schema.createIndex('sso_requests_expires').on('sso_requests').column('expires_ms').execute();
      await db.schema.alterTable('users').addColumn('sso_connector', 'text').execute();
      await db.schema.alterTable('users').addColumn('sso_subject', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('users').dropColumn('sso_subject').execute();
      await db.schema.alterTable('users').dropColumn('sso_connector').execute();
      await db.schema.dropTable('sso_requests').execute();
    },
  },
  '0013_sso_request_device': {
    // Device trust on an SSO login: the device challenge's payload (the nonce to quote, or an
    // auto-enrollment's sealed secret, hashed) made when the request started, checked when its code is
    // redeemed (auth/device-trust/login.ts, as a local login keeps it in its challenge).
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('sso_requests').addColumn('device_json', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('sso_requests').dropColumn('device_json').execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
