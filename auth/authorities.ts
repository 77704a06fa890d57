// The cluster's CAs in the database (table cluster_authorities), so that every keyport-auth replica on one
// database signs with the same SSH user CA and TLS CA, and clients pin one CA whichever replica answers.
// The private keys are sealed under the key-encryption key (auth/secrets.ts), which each replica reads
// from its own configuration: a copy of the database alone yields no CA key.
//
// The first start on an empty database creates them: one transaction inserts a row per kind unless one is
// there (the primary key on `kind` decides a race), then every start loads whatever rows are there. A data
// dir from before keeps its CAs: the files in `<dataDir>/ca/` are imported at the first start after the
// upgrade, when the database has no CAs yet; files that are not the database's CAs stop the start.
import { createPublicKey } from 'node:crypto';
import { sshPublicKeyFromKeyObject } from './ca/ssh';
import type { KeyObject } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import {
  authoritiesFromKeys,
  caPin,
  checkClusterName,
  generatePrivateKey,
  newTlsCaCertificatePem,
  parsePrivateKey,
  readLegacyCaFiles,
} from './ca/authority';
import type { Authorities, LegacyCaFiles } from './ca/authority';
import { SealedSecretRefused } from './secrets';
import type { Sealer } from './secrets';
import type { Store } from './storage/store';

export const SSH_USER_CA = 'ssh_user';
export const TLS_CA = 'tls';
export const SSH_HOST_CA = 'ssh_host';

/** What a CA key is bound to when sealed: a row's key does not open as another kind's. */
export const caKeyContext = (kind: string) => `ca-key:${kind}`;

export interface ClusterAuthorityOptions {
  sealer: Sealer;
  /** The KEK's file, named in the message when the stored keys do not open with it. */
  kekFile: string;
}

function wrongKek(kekFile: string): KeyportError {
  return new KeyportError(
    'PRECONDITION_FAILED',
    `A CA key in the database does not open with this key-encryption key (${kekFile}): it is not the key the cluster's CAs were sealed with. Every replica's key_encryption_key_file must hold the same key; nothing was changed.`,
  );
}

/**
 * The CAs stored in the database, or undefined while a kind is missing. Reads only: a replica whose KEK
 * is not the cluster's is refused here, before it writes anything.
 */
export async function loadClusterAuthorities(
  store: Store,
  clusterName: string,
  options: ClusterAuthorityOptions,
): Promise<Authorities | undefined> {
  checkClusterName(clusterName);
  const rows = new Map((await store.listAuthorities()).map((row) => [row.kind, row]));
  const ssh = rows.get(SSH_USER_CA);
  const tls = rows.get(TLS_CA);
  if (!ssh || !tls) return undefined;
  const open = (sealed: string, kind: string) => {
    try {
      return options.sealer.open(sealed, caKeyContext(kind));
    } catch (error) {
      if (error instanceof SealedSecretRefused) throw wrongKek(options.kekFile);
      throw error;
    }
  };
  const sshKey = parsePrivateKey(open(ssh.private_key, SSH_USER_CA), 'Ed25519', 'the SSH user CA key');
  const tlsKey = parsePrivateKey(open(tls.private_key, TLS_CA), 'ECDSA P-256', 'the TLS CA key');
  if (!tls.certificate) throw new KeyportError('INTERNAL', 'The TLS CA has no certificate in the database.');
  return authoritiesFromKeys(clusterName, sshKey, tlsKey, tls.certificate);
}

/**
 * The CAs in the database, created (or imported from `<dataDir>/ca/`) when there are none. Two replicas
 * starting at once on an empty database end with the one set that was inserted first.
 */
export async function loadOrCreateClusterAuthorities(
  store: Store,
  clusterName: string,
  options: ClusterAuthorityOptions & { dataDir: string; now: number; log?: (line: string) => void },
): Promise<Authorities> {
  const stored = await loadClusterAuthorities(store, clusterName, options);
  // A data dir from before the CAs moved into the database may hold CA files: imported when the database
  // has none, and otherwise they must be the database's (see checkLegacyCaFiles).
  let legacy: LegacyCaFiles;
  try {
    legacy = await readLegacyCaFiles(options.dataDir, options.sealer);
  } catch (error) {
    if (error instanceof SealedSecretRefused) {
      throw new KeyportError(
        'PRECONDITION_FAILED',
        `The CA files in ${options.dataDir}/ca do not open with this key-encryption key (${options.kekFile}): ${error.message}`,
      );
    }
    throw error;
  }
  if (stored) return checkLegacyCaFiles(stored, legacy, options.dataDir);
  const sshKey = legacy.ssh ?? generatePrivateKey('Ed25519');
  const tlsKey = legacy.tls ?? generatePrivateKey('ECDSA P-256');
  const certPem =
    legacy.tls && legacy.certPem ? legacy.certPem : await newTlsCaCertificatePem(clusterName, tlsKey);
  // Checked before it is stored: the certificate must belong to the key.
  await authoritiesFromKeys(clusterName, sshKey, tlsKey, certPem, `${options.dataDir}/ca/tls-ca.crt`);

  const pem = (key: KeyObject) => key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const inserted = await store.insertAuthoritiesIfAbsent([
    {
      kind: SSH_USER_CA,
      private_key: options.sealer.seal(pem(sshKey), caKeyContext(SSH_USER_CA)),
      certificate: null,
      created_ms: options.now,
    },
    {
      kind: TLS_CA,
      private_key: options.sealer.seal(pem(tlsKey), caKeyContext(TLS_CA)),
      certificate: certPem,
      created_ms: options.now,
    },
  ]);
  if (inserted > 0 && (legacy.ssh || legacy.tls)) {
    options.log?.(`CAs: imported the CA files of ${options.dataDir}/ca into the database (sealed)`);
  }
  const loaded = await loadClusterAuthorities(store, clusterName, options);
  if (!loaded)
    throw new KeyportError('INTERNAL', 'The cluster CAs vanished from the database as they were made.');
  // Another replica may have inserted its set first: this data dir's files must then be that set.
  return checkLegacyCaFiles(loaded, legacy, options.dataDir);
}

/**
 * A data dir whose CA files are not the database's CAs was another cluster's (two old single-machine
 * clusters pointed at one database, say): its clients pinned a CA this replica would not serve. Refused,
 * naming both pins, rather than dropping those keys in silence.
 */
function checkLegacyCaFiles(authorities: Authorities, legacy: LegacyCaFiles, dataDir: string): Authorities {
  const spki = (key: KeyObject) => createPublicKey(key).export({ type: 'spki', format: 'der' });
  const differs = (file: KeyObject | undefined, ca: KeyObject) => !!file && !spki(file).equals(spki(ca));
  if (differs(legacy.ssh, authorities.ssh.privateKey) || differs(legacy.tls, authorities.tls.privateKey)) {
    const filePin = legacy.tls && legacy.certPem ? ` (CA pin ${caPin(legacy.certPem)})` : '';
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `The CA files in ${dataDir}/ca${filePin} are not the cluster's CAs in the database (CA pin ${authorities.tls.pin}): this data dir belonged to another cluster. Start this replica with a data dir of its own, and keep those files only if that other cluster's clients must be moved; nothing was changed.`,
    );
  }
  return authorities;
}

/**
 * The authorities with the cluster's SSH host CA, created on the first start that needs it (a new cluster,
 * or one from before nodes existed): one row inserted unless one is there, so replicas agree on one host CA.
 * Sealed under the KEK like the other CA keys.
 */
export async function withHostAuthority(
  store: Store,
  authorities: Authorities,
  options: ClusterAuthorityOptions & { now: number },
): Promise<Authorities> {
  const load = async () =>
    (await store.listAuthorities()).find((row) => row.kind === SSH_HOST_CA) ?? undefined;
  let row = await load();
  if (!row) {
    const pem = generatePrivateKey('Ed25519').export({ type: 'pkcs8', format: 'pem' }).toString();
    await store.insertAuthoritiesIfAbsent([
      {
        kind: SSH_HOST_CA,
        private_key: options.sealer.seal(pem, caKeyContext(SSH_HOST_CA)),
        certificate: null,
        created_ms: options.now,
      },
    ]);
    row = await load();
    if (!row)
      throw new KeyportError('INTERNAL', 'The SSH host CA vanished from the database as it was made.');
  }
  let opened: string;
  try {
    opened = options.sealer.open(row.private_key, caKeyContext(SSH_HOST_CA));
  } catch (error) {
    if (error instanceof SealedSecretRefused) throw wrongKek(options.kekFile);
    throw error;
  }
  const privateKey = parsePrivateKey(opened, 'Ed25519', 'the SSH host CA key');
  return {
    ...authorities,
    sshHost: {
      privateKey,
      publicKey: sshPublicKeyFromKeyObject(privateKey, `${authorities.clusterName} Keyport SSH host CA`),
    },
  };
}
