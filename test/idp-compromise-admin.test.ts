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
} from '../lab/idp-compromise';
import type { IdpCompromiseLab, RealAdmin } from '../lab/idp-compromise';
import { startLabTpm } from '../lab/tpm';
import { webClient } from '../lab/web';
import { WEB_DEVICE_CONFIRM_PATH, webApprovalQuoteData, webTokenDigest } from '../proto/web-approval';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../proto/webapi';

const ALICE = 'alice@keyport.lab';
const BOB = 'bob@keyport.lab';

let lab: IdpCompromiseLab;
let admin: RealAdmin;
let touches = 0;

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
  it.todo("7. refuses the attacker's IdP login itself: they do not hold the person's key (needs wt-ssodev)");
});
