// keyport-auth's configuration: a YAML file shaped like teleport.yaml's auth_service section, with
// command-line flags taking precedence. `auth_service.authentication` is a cluster_auth_preference spec,
// applied at every start (the file is the source of truth for it, as in Teleport).
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { KeyportError } from '../proto/errors';
import { parseGoDurationSeconds } from '../proto/resources/duration';
import type { LockoutPolicy } from './context';
import type { RateLimitPolicy } from './lockout';
import { validConnString } from './storage/postgres';
import type { StorageOptions } from './storage/store';

export interface AuthConfig {
  /** CA files and the admin identity; the SQLite database too, unless `storage` names PostgreSQL. */
  dataDir: string;
  /** `keyport.storage`: SQLite in the data dir (the default) or a PostgreSQL database. */
  storage: StorageOptions;
  /** The key-encryption key's file (auth/secrets.ts): outside the data dir, `<data dir>.kek` by default. */
  kekFile: string;
  listen: { host: string; port: number };
  publicAddr: string;
  /** The web UI's listener (auth/web/), when `web_listen_addr` or `--web-listen` asks for one. */
  web?: { listen: { host: string; port: number }; publicAddr: string };
  clusterName: string;
  lockout: LockoutPolicy;
  rateLimit: RateLimitPolicy;
  /** A cluster_auth_preference spec to apply at start; undefined leaves the stored one alone. */
  authentication: Record<string, unknown> | undefined;
  /** Relative CA file paths in `authentication` are read from here: the config file's folder. */
  configDir: string;
  /** `auth_service.oidc_ca_file`: CAs an SSO connector's IdP may be trusted by, besides the system's. */
  oidcCaFile?: string;
}

/**
 * Unauthenticated calls per client address, and password attempts per user name, per minute. Generous
 * enough for many people behind one NAT address signing in at 9 am; far too few for a guessing script.
 */
export const DEFAULT_RATE_LIMIT = { perAddress: 300, perUser: 60 } as const;

export interface AuthFlags {
  config?: string;
  dataDir?: string;
  kekFile?: string;
  listen?: string;
  publicAddr?: string;
  webListen?: string;
  webPublicAddr?: string;
  clusterName?: string;
}

const duration = z.string().refine((text) => (parseGoDurationSeconds(text) ?? 0) > 0, {
  message: 'a positive duration such as 30m or 1h',
});

const fileSchema = z
  .object({
    version: z.literal('v1').optional(),
    keyport: z
      .object({
        data_dir: z.string().min(1).optional(),
        // Shaped like teleport.yaml's storage section. The conn string carries the credentials (or names
        // sslcert/sslkey/sslrootcert files, or a passfile): messages never repeat it.
        storage: z
          .object({
            type: z.enum(['sqlite', 'postgresql']).optional(),
            conn_string: z
              .string()
              .refine(validConnString, {
                message: 'a postgresql://USER@HOST:PORT/DATABASE URL (parameters such as sslmode after ?)',
              })
              .optional(),
            pool_size: z.number().int().min(1).max(1000).optional(),
            statement_timeout: z
              .string()
              .refine((text) => parseGoDurationSeconds(text) !== undefined, {
                message: 'a duration such as 30s (0 for none)',
              })
              .optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    auth_service: z
      .object({
        enabled: z.boolean().optional(),
        listen_addr: z.string().optional(),
        public_addr: z.string().optional(),
        web_listen_addr: z.string().optional(),
        web_public_addr: z.string().optional(),
        key_encryption_key_file: z.string().min(1).optional(),
        cluster_name: z.string().min(1).optional(),
        lockout: z
          .object({
            max_attempts: z.number().int().min(1).max(100).optional(),
            window: duration.optional(),
            duration: duration.optional(),
          })
          .strict()
          .optional(),
        rate_limit: z
          .object({
            per_address: z.number().int().min(1).max(1_000_000).optional(),
            per_user: z.number().int().min(1).max(1_000_000).optional(),
            window: duration.optional(),
          })
          .strict()
          .optional(),
        authentication: z.record(z.string(), z.unknown()).optional(),
        oidc_ca_file: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export function parseHostPort(text: string, fieldPath: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new KeyportError('INVALID_ARGUMENT', `${fieldPath}: "${text}" is not HOST:PORT.`, { fieldPath });
  }
  return { host: (match[1] ?? match[2]) as string, port };
}

export async function loadAuthConfig(flags: AuthFlags): Promise<AuthConfig> {
  let file: z.output<typeof fileSchema> = {};
  if (flags.config) {
    const text = await readFile(flags.config, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        `Cannot read the config file ${flags.config}: ${error.code ?? error}`,
      );
    });
    let raw: unknown;
    try {
      raw = parseYaml(text) ?? {};
    } catch (error) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        `${flags.config}: invalid YAML: ${(error as Error).message}`,
      );
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue?.path.join('.') ?? '';
      const keys = issue && 'keys' in issue ? (issue.keys as string[]).join(',') : '';
      // An unknown top-level key has an empty path: "proxy_service", not ".proxy_service".
      const fieldPath = [path, keys].filter(Boolean).join('.');
      throw new KeyportError('INVALID_ARGUMENT', `${flags.config}: ${fieldPath}: ${issue?.message}`, {
        fieldPath,
      });
    }
    file = parsed.data;
  }
  const auth = file.auth_service ?? {};
  const dataDir = flags.dataDir ?? file.keyport?.data_dir;
  if (!dataDir)
    throw new KeyportError('INVALID_ARGUMENT', 'Give a data directory: --data-dir DIR or keyport.data_dir.');
  const listenText = flags.listen ?? auth.listen_addr ?? '127.0.0.1:3025';
  const listen = parseHostPort(listenText, flags.listen ? '--listen' : 'auth_service.listen_addr');
  const publicAddr =
    flags.publicAddr ??
    auth.public_addr ??
    `${['0.0.0.0', '::'].includes(listen.host) ? 'localhost' : listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
  parseHostPort(publicAddr, flags.publicAddr ? '--public-addr' : 'auth_service.public_addr');
  const web = webListener(flags, auth);
  const lockout = auth.lockout ?? {};
  const rates = auth.rate_limit ?? {};
  const kekFile = flags.kekFile ?? auth.key_encryption_key_file ?? `${resolve(dataDir)}.kek`;
  // Anywhere under the data dir, however deep, is inside it.
  const fromDataDir = relative(resolve(dataDir), resolve(kekFile));
  if (fromDataDir === '' || (!fromDataDir.startsWith('..') && !isAbsolute(fromDataDir))) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      'auth_service.key_encryption_key_file: keep the key-encryption key outside the data dir, or a copy of the data dir opens every secret in it.',
      { fieldPath: 'auth_service.key_encryption_key_file' },
    );
  }
  return {
    dataDir,
    storage: storageOptions(file.keyport?.storage ?? {}),
    kekFile: resolve(kekFile),
    listen,
    publicAddr,
    ...(web ? { web } : {}),
    clusterName: flags.clusterName ?? auth.cluster_name ?? parseHostPort(publicAddr, 'public_addr').host,
    lockout: {
      maxAttempts: lockout.max_attempts ?? 5,
      windowMs: (parseGoDurationSeconds(lockout.window ?? '30m') ?? 1800) * 1000,
      durationMs: (parseGoDurationSeconds(lockout.duration ?? '30m') ?? 1800) * 1000,
    },
    rateLimit: {
      perAddress: rates.per_address ?? DEFAULT_RATE_LIMIT.perAddress,
      perUser: rates.per_user ?? DEFAULT_RATE_LIMIT.perUser,
      windowMs: (parseGoDurationSeconds(rates.window ?? '1m') ?? 60) * 1000,
    },
    authentication: auth.authentication,
    configDir: flags.config ? dirname(resolve(flags.config)) : process.cwd(),
    ...(auth.oidc_ca_file
      ? {
          oidcCaFile: resolve(
            flags.config ? dirname(resolve(flags.config)) : process.cwd(),
            auth.oidc_ca_file,
          ),
        }
      : {}),
  };
}

const LOOPBACK_OR_ANY = ['127.0.0.1', '::1', '0.0.0.0', '::', 'localhost'];

/**
 * The web listener and its public address, whose `https://` origin is the one origin the web UI is served
 * from and WebAuthn accepts there. A browser refuses an IP address as a WebAuthn RP ID, so a loopback or
 * wildcard listener is reached as `localhost` unless `web_public_addr` names the host.
 */
function webListener(
  flags: AuthFlags,
  auth: { web_listen_addr?: string; web_public_addr?: string },
): AuthConfig['web'] {
  const text = flags.webListen ?? auth.web_listen_addr;
  if (text === undefined) {
    if (flags.webPublicAddr ?? auth.web_public_addr) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        'auth_service.web_public_addr: give web_listen_addr (or --web-listen) too, or the web UI has no listener.',
        { fieldPath: 'auth_service.web_public_addr' },
      );
    }
    return undefined;
  }
  const listen = parseHostPort(text, flags.webListen ? '--web-listen' : 'auth_service.web_listen_addr');
  const publicAddr =
    flags.webPublicAddr ??
    auth.web_public_addr ??
    `${LOOPBACK_OR_ANY.includes(listen.host) ? 'localhost' : listen.host}:${listen.port}`;
  const field = flags.webPublicAddr ? '--web-public-addr' : 'auth_service.web_public_addr';
  if (isIP(parseHostPort(publicAddr, field).host) !== 0) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `${field}: a browser needs a host name here, not an IP address.`,
      {
        fieldPath: field,
      },
    );
  }
  return { listen, publicAddr };
}

/** Connections per replica, and how long one statement may run, unless the config says otherwise. */
export const DEFAULT_POOL_SIZE = 10;
export const DEFAULT_STATEMENT_TIMEOUT = '30s';

type StorageSection = NonNullable<NonNullable<z.output<typeof fileSchema>['keyport']>['storage']>;

function storageOptions(section: StorageSection): StorageOptions {
  const type = section.type ?? 'sqlite';
  if (type === 'sqlite') {
    const extra = (['conn_string', 'pool_size', 'statement_timeout'] as const).find(
      (k) => section[k] !== undefined,
    );
    if (extra) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        `keyport.storage.${extra}: only for type: postgresql (SQLite lives in the data dir).`,
        { fieldPath: `keyport.storage.${extra}` },
      );
    }
    return { type };
  }
  if (!section.conn_string) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      'keyport.storage.conn_string: type: postgresql needs a conn string, such as postgresql://keyport@db.example.com:5432/keyport?sslmode=verify-full.',
      { fieldPath: 'keyport.storage.conn_string' },
    );
  }
  return {
    type,
    connString: section.conn_string,
    poolSize: section.pool_size ?? DEFAULT_POOL_SIZE,
    statementTimeoutMs: Math.round(
      (parseGoDurationSeconds(section.statement_timeout ?? DEFAULT_STATEMENT_TIMEOUT) ?? 30) * 1000,
    ),
  };
}
