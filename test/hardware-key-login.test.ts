// Hardware-key policy at login, through a real keyport-auth (issue 10, "Policies, end to end", the server
// side): a role requiring hardware_key_touch refuses a software key with PRIVATE_KEY_POLICY_NOT_MET naming
// the policy, and accepts a key whose PIV attestation (made by the lab card's own attestation code under
// the lab attestation root, which the cap trusts) shows touch; the certificates then carry the policy met.
// Attestations under an unknown root, of another key, and below the policy are refused. Every refusal spends
// the challenge, stores nothing but its audit, and leaves every other table as it was.
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_IDENTITY_EXTENSION_OID } from '../auth/ca/x509';
import { x509 } from '../auth/ca/x509-library';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { attestSlotKey, createCardAttestation } from '../lab/piv/attestation';
import type { CardAttestation } from '../lab/piv/attestation';
import { PIN_POLICY, TOUCH_POLICY } from '../lab/piv/policy';
import { connectAsAdmin, hardwareKeyClusterYaml, openClusterDb, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { KeyportError } from '../proto/errors';
import type { HardwareKeyAttestation } from '../proto/gen/keyport/v1/auth';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';

let cluster: LabCluster;
let card: CardAttestation;
let api: ClusterApi;
const PASSWORD = 'hana-password-123';

const TOUCH_ROLE = {
  kind: 'role',
  version: 'v7',
  metadata: { name: 'critical' },
  spec: {
    options: { require_session_mfa: 'hardware_key_touch' },
    allow: { logins: ['hana'] },
  },
};

beforeAll(async () => {
  card = await createCardAttestation(20_261_206);
  cluster = await startLabCluster({
    clusterName: 'hardware-keys',
    configYaml: hardwareKeyClusterYaml(card.root.certPem),
  });
  const admin = await connectAsAdmin(cluster);
  try {
    await admin.admin.createResources({ documentsJson: [JSON.stringify(TOUCH_ROLE)], force: false });
    const { signupToken } = await admin.admin.createUser({
      name: 'hana',
      roles: ['access', 'critical'],
      traits: {},
    });
    api = connectCluster({
      address: parseClusterAddress(cluster.address),
      caPem: (
        JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
          caCertPem: string;
        }
      ).caCertPem,
      caPin: cluster.caPin,
    });
    await api.auth.completeSignup({ token: signupToken, password: PASSWORD });
  } finally {
    admin.close();
  }
});

afterAll(async () => {
  api?.close();
  await cluster?.stop();
});

function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

function publicPem(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}

/** The lab card's attestation of `key` in slot 9c, signed by the card's f9 key. */
async function attest(
  key: KeyObject,
  touchPolicy: number,
  authority: CardAttestation = card,
): Promise<HardwareKeyAttestation> {
  return {
    slotCertificate: Buffer.from(
      await attestSlotKey(
        authority.device,
        { serial: 20_261_206, firmware: [5, 7, 1], formFactor: 1 },
        { slot: 0x9c, publicKey: createPublicKey(key), pinPolicy: PIN_POLICY.NEVER, touchPolicy },
      ),
    ),
    attestationCertificate: new X509Certificate(authority.device.certPem).raw,
    intermediates: [],
  };
}

/** Step one, then Login with this public key and attestation. */
async function login(tlsKey: KeyObject, attestation?: HardwareKeyAttestation) {
  const challenge = await api.auth.createAuthenticateChallenge({
    user: 'hana',
    password: PASSWORD,
    scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
  });
  const before = snapshot();
  try {
    const response = await api.auth.login({
      mfaResponse: { challengeId: challenge.challengeId, response: undefined },
      sshPublicKey: '',
      tlsPublicKey: publicPem(tlsKey),
      ttlSeconds: 0,
      hardwareKeyAttestation: attestation,
    });
    return { challenge, response, before };
  } catch (error) {
    return { challenge, error: error as KeyportError, before };
  }
}

/** Every table but those a refused Login writes (its audit, its rate-limit count, its spent challenge). */
function snapshot(): Record<string, unknown[]> {
  const db = openClusterDb(cluster, { readonly: true });
  try {
    const tables = (
      db.prepare(`select name from sqlite_master where type = 'table' order by name`).all() as {
        name: string;
      }[]
    )
      .map((row) => row.name)
      .filter((name) => !['audit_events', 'rate_limits', 'challenges', 'sqlite_sequence'].includes(name));
    return Object.fromEntries(tables.map((name) => [name, db.prepare(`select * from "${name}"`).all()]));
  } finally {
    db.close();
  }
}

function lastLoginAudit(): { success: number; message: string; actor: string } {
  const db = openClusterDb(cluster, { readonly: true });
  try {
    return db
      .prepare(`select success, message, actor from audit_events where type = 'user.login' order by id desc`)
      .get() as { success: number; message: string; actor: string };
  } finally {
    db.close();
  }
}

function challengeSpent(id: string): boolean {
  const db = openClusterDb(cluster, { readonly: true });
  try {
    const row = db.prepare(`select * from challenges where id = ?`).get(id) as
      Record<string, unknown> | undefined;
    return row === undefined || row['used'] === 1;
  } finally {
    db.close();
  }
}

/** A refused Login: the code, the audit naming the policy, the challenge spent, nothing else stored. */
function expectRefused(outcome: Awaited<ReturnType<typeof login>>, code: string): KeyportError {
  expect(outcome.error).toBeInstanceOf(KeyportError);
  const error = outcome.error!;
  expect(error.code).toBe(code);
  expect(snapshot()).toEqual(outcome.before);
  expect(challengeSpent(outcome.challenge.challengeId)).toBe(true);
  const audit = lastLoginAudit();
  expect(audit).toMatchObject({ success: 0, actor: 'hana' });
  expect(audit.message).toContain('private key policy "hardware_key_touch"');
  return error;
}

describe('a role requiring hardware_key_touch', () => {
  it('says the policy and its slot in step one, so a client can prepare its card key', async () => {
    const challenge = await api.auth.createAuthenticateChallenge({
      user: 'hana',
      password: PASSWORD,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
    });
    expect(challenge).toMatchObject({ privateKeyPolicy: 'hardware_key_touch', pivSlot: '9c' });
  });

  it('refuses a software key with PRIVATE_KEY_POLICY_NOT_MET naming the policy; nothing stored but the audit', async () => {
    const error = expectRefused(await login(newKey()), 'PRIVATE_KEY_POLICY_NOT_MET');
    expect(error.message).toContain('Unmet private key policy "hardware_key_touch".');
    expect(error.fields).toMatchObject({ privateKeyPolicy: 'hardware_key_touch', resolvableByRelogin: true });
  });

  it('accepts a key the lab card attests with touch; the certificates carry the policy met', async () => {
    const key = newKey();
    const outcome = await login(key, await attest(key, TOUCH_POLICY.CACHED));
    expect(outcome.error).toBeUndefined();
    const response = outcome.response!;
    expect(response.privateKeyPolicy).toBe('hardware_key_touch');
    const certificate = new X509Certificate(response.tlsCertificate);
    expect(certificate.publicKey.export({ type: 'spki', format: 'pem' })).toBe(publicPem(key));
    const extension = new x509.X509Certificate(certificate.raw).getExtension(CLIENT_IDENTITY_EXTENSION_OID);
    const text = Buffer.from(extension?.value ?? new ArrayBuffer(0)).toString('utf8');
    const identity = JSON.parse(text.slice(text.indexOf('{'))) as Record<string, unknown>;
    expect(identity).toMatchObject({ user: 'hana', 'keyport-private-key-policy': 'hardware_key_touch' });
    const sshCertificate = Buffer.from(response.sshCertificate.split(' ')[1]!, 'base64');
    expect(sshCertificate.includes(Buffer.from('keyport-private-key-policy@keyport.dev'))).toBe(true);
    expect(sshCertificate.includes(Buffer.from('hardware_key_touch'))).toBe(true);
    expect(lastLoginAudit()).toMatchObject({ success: 1, actor: 'hana' });
  });

  it('refuses an attestation under a root the cluster does not trust', async () => {
    const key = newKey();
    const stranger = await createCardAttestation(1);
    const error = expectRefused(
      await login(key, await attest(key, TOUCH_POLICY.ALWAYS, stranger)),
      'ACCESS_DENIED',
    );
    expect(error.message).toContain('does not chain');
  });

  it('refuses an attestation of another key than the session key', async () => {
    const error = expectRefused(
      await login(newKey(), await attest(newKey(), TOUCH_POLICY.ALWAYS)),
      'ACCESS_DENIED',
    );
    expect(error.message).toContain('another key');
  });

  it('refuses a key attested below the policy (touch never), naming the policy', async () => {
    const key = newKey();
    const error = expectRefused(
      await login(key, await attest(key, TOUCH_POLICY.NEVER)),
      'PRIVATE_KEY_POLICY_NOT_MET',
    );
    expect(error.message).toContain('Unmet private key policy "hardware_key_touch".');
    expect(error.fields.privateKeyPolicy).toBe('hardware_key_touch');
  });
});

describe('a policy raised after the login', () => {
  it('refuses the session’s next call with PRIVATE_KEY_POLICY_NOT_MET naming today’s policy, resolvable by relogin', async () => {
    // hana's role today asks hardware_key_touch: a touch-attested key logs in and calls.
    const key = newKey();
    const outcome = await login(key, await attest(key, TOUCH_POLICY.CACHED));
    expect(outcome.error).toBeUndefined();
    const caPem = (
      JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
        caCertPem: string;
      }
    ).caCertPem;
    const session = connectCluster({
      address: parseClusterAddress(cluster.address),
      caPem,
      caPin: cluster.caPin,
      clientKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      clientCertPem: outcome.response!.tlsCertificate,
    });
    const admin = await connectAsAdmin(cluster);
    try {
      expect((await session.user.getStatus({})).user).toBe('hana');
      // The admin raises the role to touch and PIN: the same certificate no longer meets it.
      const raised = {
        ...TOUCH_ROLE,
        spec: { ...TOUCH_ROLE.spec, options: { require_session_mfa: 'hardware_key_touch_and_pin' } },
      };
      await admin.admin.createResources({ documentsJson: [JSON.stringify(raised)], force: true });
      const before = snapshot();
      const refused = await session.user.getStatus({}).catch((error: unknown) => error as KeyportError);
      expect(refused).toMatchObject({
        code: 'PRIVATE_KEY_POLICY_NOT_MET',
        fields: { privateKeyPolicy: 'hardware_key_touch_and_pin', resolvableByRelogin: true },
      });
      expect((refused as KeyportError).message).toContain(
        'Unmet private key policy "hardware_key_touch_and_pin".',
      );
      expect(snapshot()).toEqual(before);
      // Lowered again, the session works again: the policy is read at every call.
      await admin.admin.createResources({ documentsJson: [JSON.stringify(TOUCH_ROLE)], force: true });
      expect((await session.user.getStatus({})).user).toBe('hana');
    } finally {
      session.close();
      admin.close();
    }
  });
});
