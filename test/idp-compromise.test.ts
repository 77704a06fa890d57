// The seed's IdP-compromise scenario ("Harden your Cluster Against IdP Compromises"), end to end: the
// attacker controls the lab IdP (they sign in as anyone and mint any groups claim); the cluster is set up as
// the seed recommends (WebAuthn the only second factor, so MFA for admin actions; require_session_mfa;
// device trust required). Each refusal is asserted by its code, by stored state left as it was, and by its
// audit row naming the connector and the IdP subject. Real keyport-auth, the lab IdP, a real sshd with
// keyport-node, swtpm TPMs and the lab's soft security keys (lab/idp-compromise.ts).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSshCertificate } from '../auth/ca/ssh';
import { csrfTokenOf, WEB_SESSION_COOKIE } from '../auth/web-sessions';
import type { ClusterApi } from '../client/api';
import { adminActionFor } from '../client/ceremonies/admin-action';
import { TrustedDevice } from '../client/device-trust/device';
import { enrollThisDevice } from '../client/device-trust/enroll';
import type { Profile, ProfileStore } from '../client/profiles';
import { connectAsProfile, profileSigner } from '../client/session';
import { keepHostCa } from '../client/ssh/known-hosts';
import {
  addFirstKey,
  ADMIN_ASSET_TAG,
  auditMark,
  auditRows,
  CONNECTOR,
  hardenedCap,
  NODE_LOGIN,
  NODE_NAME,
  setUpRealAdmin,
  ssoLogin,
  ssoWebSession,
  startIdpCompromiseLab,
  storedState,
} from '../lab/idp-compromise';
import type { IdpCompromiseLab, RealAdmin } from '../lab/idp-compromise';
import { sshWithAgent } from '../lab/sshd';
import { webClient } from '../lab/web';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import { webApprovalQuoteData, webTokenDigest } from '../proto/web-approval';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../proto/webapi';

const ALICE = 'alice@keyport.lab';
const BOB = 'bob@keyport.lab';

let lab: IdpCompromiseLab;
let admin: RealAdmin;

interface Session {
  profiles: ProfileStore;
  profile: Profile;
  api: ClusterApi;
}
const sessions: ClusterApi[] = [];

/** The attacker's sign-in at their own IdP as `username`, from a machine with no TPM the cluster ever saw. */
async function attackerSignsIn(username: string): Promise<Session> {
  const home = join(lab.work, `attacker-${username}-${randomBytes(3).toString('hex')}`);
  const { profiles, profile } = await ssoLogin(lab, home, username, false);
  const api = await connectAsProfile(profiles, profile);
  sessions.push(api);
  return { profiles, profile, api };
}

/** bob's sign-in after the attacker minted him the IdP's `admins` group (editor). */
async function attackerMintsEditor(): Promise<Session> {
  lab.idp.setClaims('bob', { groups: ['admins'] });
  try {
    return await attackerSignsIn('bob');
  } finally {
    lab.idp.setClaims('bob', { groups: ['team-dev'] });
  }
}

/** The refusals of `type` since `mark`, each asserted to name the connector and the IdP subject. */
function refusals(type: string, since: number, subject: string) {
  const rows = auditRows(lab.cluster, type, since).filter((row) => row.success === 0);
  expect(rows.length, `no ${type} refusal audited`).toBeGreaterThan(0);
  for (const row of rows) {
    expect(row.fields, `${type}: ${row.message}`).toMatchObject({
      connector: CONNECTOR,
      idp_subject: subject,
    });
  }
  return rows;
}

beforeAll(async () => {
  lab = await startIdpCompromiseLab();
  await lab.create(hardenedCap());
  admin = await setUpRealAdmin(lab);
}, 300_000);

afterAll(async () => {
  for (const api of sessions) api.close();
  await lab?.stop();
});

describe('an attacker who controls the IdP', () => {
  it('1. signs in as alice, a real admin, from an untrusted device: the IdP vouches, the certificates carry no device', async () => {
    const since = auditMark(lab.cluster);
    const attacker = await attackerSignsIn('alice');
    expect(attacker.profile.user).toBe(ALICE);
    expect(attacker.profile.roles.sort()).toEqual(['editor', 'member', 'ops']);
    const status = await attacker.api.user.getStatus({});
    expect(status.device).toBeUndefined();
    const ssh = parseSshCertificate(attacker.profile.sshCertificate);
    expect(Object.keys(ssh.extensions).filter((name) => name.includes('device'))).toEqual([]);
    const [login] = auditRows(lab.cluster, 'user.login', since);
    expect(login).toMatchObject({ actor: ALICE, success: 1, message: `sso (${CONNECTOR})` });
    expect(login!.fields).toMatchObject({ connector: CONNECTOR, idp_subject: 'alice' });
    const [issued] = auditRows(lab.cluster, 'cert.issued', since);
    expect(issued!.fields).toMatchObject({ connector: CONNECTOR, idp_subject: 'alice' });
    expect(issued!.fields).not.toHaveProperty('device_id');
  });

  it("2. cannot register a first MFA device for a person who has none (bob): DEVICE_TRUST_REQUIRED; nor add one to alice's", async () => {
    const bob = await attackerSignsIn('bob');
    const before = storedState(lab);
    const since = auditMark(lab.cluster);
    await expect(addFirstKey(bob.api, admin.origin, lab.attackerKey, 'mine')).rejects.toMatchObject({
      code: 'DEVICE_TRUST_REQUIRED',
      message: expect.stringContaining('your first MFA device'),
    });
    expect(storedState(lab)).toBe(before);
    const [refused] = refusals('mfa.add', since, 'bob');
    expect(refused).toMatchObject({ actor: BOB, success: 0 });
    // alice has a key: another device needs it first, which the attacker does not hold.
    const alice = await attackerSignsIn('alice');
    const beforeAlice = storedState(lab);
    await expect(addFirstKey(alice.api, admin.origin, lab.attackerKey, 'mine')).rejects.toMatchObject({
      code: 'MFA_REQUIRED',
    });
    expect(storedState(lab)).toBe(beforeAlice);
  });

  it('3. cannot run any admin action, even with a minted groups claim that maps to editor: no security key of that person', async () => {
    const bob = await attackerMintsEditor();
    expect(bob.profile.roles).toContain('editor');
    const alice = await attackerSignsIn('alice');
    const before = storedState(lab);
    const mallory = { name: 'mallory', roles: ['editor'], traits: {} };
    const writes: [service: 'admin' | 'devices', method: string, request: unknown][] = [
      ['admin', 'createUser', mallory],
      ['admin', 'lockUser', { name: ALICE, durationSeconds: 0, reason: 'taken over' }],
      [
        'admin',
        'createResources',
        {
          documentsJson: [
            JSON.stringify({
              kind: 'cluster_auth_preference',
              version: 'v2',
              metadata: { name: 'cluster-auth-preference' },
              spec: { type: 'local', second_factors: ['webauthn', 'otp'], webauthn: { rp_id: 'localhost' } },
            }),
          ],
          force: true,
        },
      ],
      ['admin', 'deleteResource', { kind: 'oidc', name: CONNECTOR }],
      ['devices', 'addDevice', { osType: 'linux', assetTag: 'ATTACKER-1' }],
      ['devices', 'createDeviceEnrollToken', { device: ADMIN_ASSET_TAG, ttlSeconds: 0 }],
    ];
    for (const [who, session] of [
      ['bob', bob],
      ['alice', alice],
    ] as const) {
      const since = auditMark(lab.cluster);
      // Asking for the touch: bob has no key at all; alice's key is not the attacker's to touch.
      if (who === 'bob') {
        await expect(
          session.api.user.createAuthenticateChallenge({
            scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
            adminActions: [adminActionFor('admin', 'createUser', mallory)],
          }),
        ).rejects.toMatchObject({
          code: 'MFA_REQUIRED',
          message: expect.stringContaining('none registered'),
        });
      }
      for (const [service, method, request] of writes) {
        const call = (session.api[service] as unknown as Record<string, (r: unknown) => Promise<unknown>>)[
          method
        ]!;
        await expect(call(request), `${who}: ${service}.${method}`).rejects.toMatchObject({
          code: 'MFA_REQUIRED',
        });
      }
      expect(storedState(lab)).toBe(before);
      const rows = refusals('mfa.admin_action', since, who);
      expect(rows.map((row) => row.fields.reason)).toEqual([
        ...(who === 'bob' ? ['no security key'] : []),
        ...writes.map(() => 'missing'),
      ]);
    }
  });

  it('3b. cannot enroll a TPM of their own as editor (self-enrollment is an admin write): MFA_REQUIRED', async () => {
    const bob = await attackerMintsEditor();
    const before = storedState(lab);
    const since = auditMark(lab.cluster);
    await expect(
      enrollThisDevice(bob.profiles, bob.profile, {
        env: { ...lab.attackerTpm.env, KEYPORT_DEVICE_ASSET_TAG: 'ATTACKER-TPM' },
      }),
    ).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
    expect(storedState(lab)).toBe(before);
    expect(refusals('mfa.admin_action', since, 'bob').map((row) => row.fields.reason)).toContain('missing');
    expect(refusals('device.enroll', since, 'bob')[0]!.message).toMatch(/enrollment refused/);
  });

  it('4a. cannot open an SSH session to a node: refused by keyport-auth, and by the node itself', async () => {
    const alice = await attackerSignsIn('alice');
    const since = auditMark(lab.cluster);
    await expect(alice.api.nodes.isMfaRequired({ node: NODE_NAME, login: NODE_LOGIN })).rejects.toMatchObject(
      {
        code: 'DEVICE_TRUST_REQUIRED',
        message: expect.stringContaining(`node "${NODE_NAME}"`),
      },
    );
    refusals('session.certificate', since, 'alice');
    // The session's own certificate, offered to the node's sshd directly.
    const hostCa = await readFile(join(lab.work, `node-${NODE_NAME}`, 'host_ca.pub'), 'utf8');
    const direct = await sshWithAgent(
      lab.work,
      {
        signer: profileSigner(alice.profiles, alice.profile),
        certificate: alice.profile.sshCertificate,
        login: NODE_LOGIN,
        knownHostsFile: await keepHostCa(alice.profiles.home, alice.profile.address, hostCa),
      },
      { name: NODE_NAME, addr: lab.sshd.addr },
      'echo in',
    );
    expect(direct.code).toBe(255);
    expect(direct.stdout).toBe('');
    const [byNode] = refusals('session.connect', since, 'alice');
    expect(byNode).toMatchObject({ actor: `node:${NODE_NAME}` });
    expect(byNode!.fields).toMatchObject({ user: ALICE, code: 'DEVICE_TRUST_REQUIRED' });
  });

  it("4b. cannot approve a web session: no trusted device of theirs, and alice's device is not theirs to quote with", async () => {
    const alice = await attackerSignsIn('alice');
    const web = await webClient(lab.cluster);
    // The attacker's browser session as alice (lab/idp-compromise.ts ssoWebSession: the web UI's IdP sign-in
    // is not built yet).
    const { token } = ssoWebSession(lab, ALICE);
    const asked = await web.request('POST', WEBAPI.deviceApproval, {
      body: {},
      headers: { Cookie: `${WEB_SESSION_COOKIE}=${token}`, [WEBAPI_CSRF_HEADER]: csrfTokenOf(token) },
    });
    expect(asked.status, asked.body).toBe(200);
    const link = new URL(String(asked.json.link));
    const id = link.searchParams.get('id')!;
    const webToken = link.searchParams.get('token')!;
    const before = storedState(lab);
    const since = auditMark(lab.cluster);
    // Their own machine: no enrolled device to name.
    await expect(
      alice.api.webSessions.beginWebSessionApproval({ id, token: webToken, credentialId: 'x'.repeat(43) }),
    ).rejects.toMatchObject({ code: 'DEVICE_TRUST_REQUIRED' });
    // alice's enrolled device, named by its credential (an editor may list devices), quoted by another TPM.
    const begun = await alice.api.webSessions.beginWebSessionApproval({
      id,
      token: webToken,
      credentialId: admin.deviceCredential,
    });
    const own = await TrustedDevice.open({
      env: { ...lab.attackerTpm.env, KEYPORT_DEVICE_ASSET_TAG: 'ATTACKER-TPM' },
    });
    try {
      await own.enrollmentData();
      const response = await own.answer({
        nonce: webApprovalQuoteData(begun.nonce, webTokenDigest(webToken)),
        credentialBlob: Buffer.alloc(0),
        encryptedSecret: Buffer.alloc(0),
      });
      await expect(
        alice.api.webSessions.approveWebSession({
          id,
          token: webToken,
          challengeId: begun.challengeId,
          response,
        }),
      ).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    } finally {
      await own.close();
    }
    expect(storedState(lab)).toBe(before);
    expect(refusals('web.approval', since, 'alice').map((row) => row.fields.step)).toEqual([
      'begin',
      'approve',
    ]);
  });

  it('5. the audit log shows every refusal of the compromised identities with the connector and the IdP subject', () => {
    const refused = [
      'mfa.add',
      'mfa.admin_action',
      'device.enroll',
      'session.certificate',
      'session.connect',
      'web.approval',
    ]
      .flatMap((type) => auditRows(lab.cluster, type))
      .filter((row) => row.success === 0);
    expect(refused.length).toBeGreaterThan(10);
    for (const row of refused) {
      const subject = row.actor === BOB || row.fields.user === BOB ? 'bob' : 'alice';
      expect(row.fields, row.message).toMatchObject({ connector: CONNECTOR, idp_subject: subject });
    }
  });
});
