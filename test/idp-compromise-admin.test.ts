// The seed's IdP-compromise scenario, the other side (test/idp-compromise.test.ts has the attacker's): the
// real admin, on her enrolled device with her own security key, can still do all of it, and her `keyport admin
// lock --user` stops the compromised identity at once. Same lab (lab/idp-compromise.ts): the lab IdP, a real
// keyport-auth set up as the seed recommends, a real sshd with keyport-node, swtpm and the lab's soft keys.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfTokenOf, WEB_SESSION_COOKIE } from '../auth/web-sessions';
import { TrustedDevice } from '../client/device-trust/device';
import { connectAsProfile } from '../client/session';
import { openClusterDb, runKeyport } from '../lab/cluster';
import {
  adminDevice,
  ADMIN_ASSET_TAG,
  anonymousApi,
  connectorYaml,
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
import { followCallback, redeemSso, signInAtIdp, ssoChallenge, startSso } from '../lab/oidc/sso-login';
import { startLabTpm } from '../lab/tpm';
import { authenticate, closeKeys, openKeys } from '../client/webauthn';
import { webClient } from '../lab/web';
import { WEB_DEVICE_CONFIRM_PATH, webApprovalQuoteData, webTokenDigest } from '../proto/web-approval';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../proto/webapi';

const ALICE = 'alice@keyport.lab';
const BOB = 'bob@keyport.lab';
const CAROL = 'carol@keyport.lab';

let lab: IdpCompromiseLab;
let admin: RealAdmin;
let touches = 0;
const quietPrompts = { tap: () => {}, pin: async () => '', newPin: async () => '', notice: () => {} };

beforeAll(async () => {
  lab = await startIdpCompromiseLab();
  await lab.create(hardenedCap());
  admin = await setUpRealAdmin(lab);
  lab.adminKey.events.on('presence', (event: { outcome: string }) => {
    if (event.outcome === 'approve') touches += 1;
  });
}, 300_000);

afterAll(async () => {
  await lab?.stop();
});

/** `keyport ARGS` as alice on her machine (her profile, her key); returns the result and the touches it took. */
async function asAlice(args: string[], env: Record<string, string> = {}) {
  const before = touches;
  const result = await runKeyport(args, {
    home: admin.home,
    env: { ...lab.clock.env, KEYPORT_LAB_SECURITY_KEY: lab.adminKey.socketPath, ...env },
    timeoutMs: 120_000,
  });
  return { ...result, touches: touches - before };
}

describe('the real admin, on her enrolled device with her own key', () => {
  it('signs in through the IdP with her device in the session, and registered her first key from it', async () => {
    const api = await connectAsProfile(admin.profiles, admin.profile);
    try {
      const status = await api.user.getStatus({});
      expect(status.user).toBe(ALICE);
      expect(status.device?.assetTag).toBe(ADMIN_ASSET_TAG);
      expect((await api.user.listMfaDevices({})).devices.map((d) => d.name)).toEqual(['alice-key']);
    } finally {
      api.close();
    }
    expect(admin.firstKey.name).toBe('alice-key');
    const added = auditRows(lab.cluster, 'mfa.add').filter((row) => row.actor === ALICE);
    expect(added).toEqual([
      expect.objectContaining({
        success: 1,
        fields: expect.objectContaining({ connector: CONNECTOR, idp_subject: 'alice' }),
      }),
    ]);
  });

  it('opens an SSH session to the node with one touch (keyport ssh, per-session MFA)', async () => {
    const since = auditMark(lab.cluster);
    const ssh = await asAlice(['ssh', `${NODE_LOGIN}@${NODE_NAME}`, 'echo', 'trusted']);
    expect(ssh.code, ssh.stderr + (await lab.sshd.log())).toBe(0);
    expect(ssh.stdout).toBe('trusted\n');
    expect(ssh.touches).toBe(1);
    const [issued] = auditRows(lab.cluster, 'session.certificate', since);
    expect(issued).toMatchObject({ actor: ALICE, success: 1 });
    expect(issued!.fields).toMatchObject({ connector: CONNECTOR, idp_subject: 'alice' });
  });

  it('approves her own web session with her enrolled device', async () => {
    const web = await webClient(lab.cluster);
    const { token } = ssoWebSession(lab, ALICE);
    const cookie = `${WEB_SESSION_COOKIE}=${token}`;
    const asked = await web.request('POST', WEBAPI.deviceApproval, {
      body: {},
      headers: { Cookie: cookie, [WEBAPI_CSRF_HEADER]: csrfTokenOf(token) },
    });
    expect(asked.status, asked.body).toBe(200);
    const link = new URL(String(asked.json.link));
    const id = link.searchParams.get('id')!;
    const webToken = link.searchParams.get('token')!;
    const api = await connectAsProfile(admin.profiles, admin.profile);
    const device = await TrustedDevice.open(adminDevice(lab));
    try {
      const begun = await api.webSessions.beginWebSessionApproval({
        id,
        token: webToken,
        credentialId: admin.deviceCredential,
      });
      const response = await device.answer({
        nonce: webApprovalQuoteData(begun.nonce, webTokenDigest(webToken)),
        credentialBlob: Buffer.alloc(0),
        encryptedSecret: Buffer.alloc(0),
      });
      const confirmation = await api.webSessions.approveWebSession({
        id,
        token: webToken,
        challengeId: begun.challengeId,
        response,
      });
      expect(confirmation.assetTag).toBe(ADMIN_ASSET_TAG);
      const confirmUrl = new URL(confirmation.confirmUrl);
      expect(confirmUrl.pathname).toBe(WEB_DEVICE_CONFIRM_PATH);
      const opened = await web.request('GET', confirmUrl.pathname + confirmUrl.search, {
        origin: null,
        headers: { Cookie: cookie, 'Sec-Fetch-Site': 'none' },
      });
      expect(opened.status, opened.body).toBe(303);
    } finally {
      await device.close();
      api.close();
    }
    const db = openClusterDb(lab.cluster);
    const trusted = db
      .prepare('SELECT device_asset_tag FROM web_sessions WHERE user = ? AND device_id IS NOT NULL')
      .all(ALICE);
    db.close();
    expect(trusted).toEqual([{ device_asset_tag: ADMIN_ASSET_TAG }]);
  });

  it('enrolls another machine of hers herself (--current-device): an admin write, one touch', async () => {
    const laptop = await startLabTpm();
    try {
      const enrolled = await asAlice(['device', 'enroll', '--current-device'], {
        ...laptop.env,
        KEYPORT_DEVICE_ASSET_TAG: 'IDP-ADMIN-2',
      });
      expect(enrolled.code, enrolled.stderr).toBe(0);
      expect(enrolled.stdout).toContain('Device "IDP-ADMIN-2"/Linux enrolled');
      expect(enrolled.touches).toBe(1);
    } finally {
      await laptop.stop();
    }
  });

  it('locks the compromised identity with one touch (keyport admin lock --user): its next call is refused at once, and its next IdP login', async () => {
    lab.idp.setClaims('bob', { groups: ['admins'] });
    try {
      const home = join(lab.work, `attacker-bob-${randomBytes(3).toString('hex')}`);
      const bob = await ssoLogin(lab, home, 'bob', false);
      const api = await connectAsProfile(bob.profiles, bob.profile);
      try {
        expect((await api.user.getStatus({})).user).toBe(BOB);
        const since = auditMark(lab.cluster);
        const locked = await asAlice(['admin', 'lock', '--user', BOB, '--message', 'IdP compromise']);
        expect(locked.code, locked.stderr).toBe(0);
        expect(locked.stdout).toContain(`User "${BOB}" has been locked`);
        expect(locked.touches).toBe(1);
        const [lock] = auditRows(lab.cluster, 'user.lock', since);
        expect(lock).toMatchObject({ actor: ALICE, success: 1 });
        expect(lock!.fields).toMatchObject({ connector: CONNECTOR, idp_subject: 'alice' });
        await expect(api.user.getStatus({})).rejects.toMatchObject({ code: 'LOCKED' });
        await expect(ssoLogin(lab, home, 'bob', false)).rejects.toMatchObject({ code: 'LOCKED' });
        const [refused] = auditRows(lab.cluster, 'sso.login', since).filter((row) => row.success === 0);
        expect(refused!.fields).toMatchObject({ connector: CONNECTOR, idp_subject: 'bob' });
      } finally {
        api.close();
      }
    } finally {
      lab.idp.setClaims('bob', { groups: ['team-dev'] });
    }
  });
});

describe('a connector with require_local_mfa: true', () => {
  beforeAll(async () => {
    await lab.create(
      connectorYaml(lab.redirectUri, lab.idp.issuer, ['  require_local_mfa: true']),
      '--force',
    );
  });

  /** The attacker at their IdP as `username`, up to the one-time code: their client, no TPM. */
  async function throughCallback(username: string) {
    const api = await anonymousApi(lab);
    const started = await startSso(api, CONNECTOR);
    const callback = await followCallback(
      lab.cluster,
      await signInAtIdp(lab.idp, started, username, lab.redirectUri),
    );
    const code = callback.location?.searchParams.get('code');
    expect(code, callback.location?.href).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return { api, started, code: code! };
  }

  it("7. refuses the attacker's IdP login as alice: her key is not theirs, and no certificate is issued", async () => {
    const { api, started, code } = await throughCallback('alice');
    const challenge = await ssoChallenge(api, started, code);
    expect(challenge.authenticate?.webauthnRequestOptionsJson).toContain('allowCredentials');
    // Their own key holds no credential of alice's: it cannot answer.
    const keys = await openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: lab.attackerKey.socketPath } });
    await expect(
      authenticate(challenge.authenticate!.webauthnRequestOptionsJson, {
        origin: admin.origin,
        keys,
        prompts: quietPrompts,
      }),
    ).rejects.toThrow();
    await closeKeys(keys);
    const before = storedState(lab);
    const since = auditMark(lab.cluster);
    await expect(redeemSso(api, started, code)).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
    expect(storedState(lab)).toBe(before);
    expect(auditRows(lab.cluster, 'cert.issued', since)).toEqual([]);
    const refused = auditRows(lab.cluster, 'sso.login', since).filter((row) => row.success === 0);
    expect(refused[0]!.fields).toMatchObject({ connector: CONNECTOR, idp_subject: 'alice' });
    api.close();
  });

  it('7. refuses the attacker as carol, who has no key yet: a first key needs a trusted device', async () => {
    // carol maps to no role at the IdP: the attacker mints her a group that does.
    lab.idp.setClaims('carol', { groups: ['team-ops'] });
    let through: Awaited<ReturnType<typeof throughCallback>>;
    try {
      through = await throughCallback('carol');
    } finally {
      lab.idp.setClaims('carol', { groups: ['contractors'] });
    }
    const { api, started, code } = through;
    // The first key would be registered inside this sign-in: not from a machine the cluster does not trust.
    const before = storedState(lab);
    const since = auditMark(lab.cluster);
    await expect(ssoChallenge(api, started, code)).rejects.toMatchObject({
      code: 'DEVICE_TRUST_REQUIRED',
      message: expect.stringContaining('your first MFA device'),
    });
    await expect(redeemSso(api, started, code)).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
    expect(storedState(lab)).toBe(before);
    expect(auditRows(lab.cluster, 'cert.issued', since)).toEqual([]);
    const refused = auditRows(lab.cluster, 'sso.login', since).filter((row) => row.success === 0);
    expect(refused.length).toBe(2);
    for (const row of refused) {
      expect(row).toMatchObject({ actor: CAROL });
      expect(row.fields).toMatchObject({ connector: CONNECTOR, idp_subject: 'carol' });
    }
    api.close();
  });

  it('7. signs the real admin in: the IdP, then her own key, on her enrolled device', async () => {
    const previous = process.env.KEYPORT_LAB_SECURITY_KEY;
    process.env.KEYPORT_LAB_SECURITY_KEY = lab.adminKey.socketPath;
    const before = touches;
    try {
      const { profile } = await ssoLogin(lab, admin.home, 'alice', adminDevice(lab));
      expect(profile.user).toBe(ALICE);
      expect(touches - before).toBe(1);
    } finally {
      if (previous === undefined) delete process.env.KEYPORT_LAB_SECURITY_KEY;
      else process.env.KEYPORT_LAB_SECURITY_KEY = previous;
    }
  });
});
