import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import { nextTotpCode, signUpUserInProcess, startLabCluster } from '../../lab/cluster';
import type { LabCluster, SignedUpUser } from '../../lab/cluster';
import { methodNames } from '../../preload/contract';
import type { EventPayloads, KeyportApi, MethodName, Prompt } from '../../preload/contract';
import { createBackend } from './backend';

const malformed: Record<MethodName, { argument: unknown; fieldPath: string }[]> = {
  'clusters.add': [
    { argument: { address: '' }, fieldPath: 'address' },
    { argument: { address: '127.0.0.1:3025', caPin: 'abc' }, fieldPath: 'caPin' },
    { argument: 42, fieldPath: 'argument' },
  ],
  'clusters.list': [{ argument: { all: true }, fieldPath: 'all' }],
  'clusters.remove': [{ argument: { address: 'a b' }, fieldPath: 'address' }],
  'auth.login': [
    { argument: { address: '127.0.0.1:3025', user: '', password: 'x' }, fieldPath: 'user' },
    { argument: { address: '127.0.0.1:3025', user: 'alice' }, fieldPath: 'password' },
    {
      argument: { address: '127.0.0.1:3025', user: 'alice', password: 'x', secondFactor: 'sms' },
      fieldPath: 'secondFactor',
    },
    {
      argument: { address: '127.0.0.1:3025', user: 'alice', password: 'x', ttlSeconds: 1.5 },
      fieldPath: 'ttlSeconds',
    },
  ],
  'auth.loginPasswordless': [{ argument: { address: 7 }, fieldPath: 'address' }],
  'auth.connectors': [
    { argument: {}, fieldPath: 'address' },
    { argument: { address: '127.0.0.1:3025', issuer: 'https://idp' }, fieldPath: 'issuer' },
  ],
  'auth.loginSso': [
    { argument: { address: '127.0.0.1:3025' }, fieldPath: 'connector' },
    { argument: { address: '127.0.0.1:3025', connector: '-lab' }, fieldPath: 'connector' },
    { argument: { address: '127.0.0.1:3025', connector: 'lab idp' }, fieldPath: 'connector' },
    { argument: { address: '127.0.0.1:3025', connector: 'a'.repeat(254) }, fieldPath: 'connector' },
    { argument: { address: '127.0.0.1:3025', connector: 'lab', ttlSeconds: 30 }, fieldPath: 'ttlSeconds' },
    {
      argument: { address: '127.0.0.1:3025', connector: 'lab', url: 'https://idp/auth' },
      fieldPath: 'url',
    },
  ],
  'auth.logout': [{ argument: { address: '' }, fieldPath: 'address' }],
  'auth.status': [{ argument: 'me', fieldPath: 'argument' }],
  'auth.sessionNotices': [{ argument: { address: '127.0.0.1:3025' }, fieldPath: 'address' }],
  'auth.signInAgain': [
    { argument: {}, fieldPath: 'address' },
    { argument: { address: 'https://auth.example.com' }, fieldPath: 'address' },
    { argument: { address: '127.0.0.1:3025', password: 'x' }, fieldPath: 'password' },
  ],
  'mfa.list': [{ argument: { user: 'bob' }, fieldPath: 'user' }],
  'mfa.add': [
    { argument: { name: '   ' }, fieldPath: 'name' },
    { argument: { name: 'key', type: 'totp' }, fieldPath: 'type' },
  ],
  'mfa.remove': [{ argument: { name: 'key', existing: 'phone' }, fieldPath: 'existing' }],
  'device.status': [
    { argument: { cluster: 'https://auth.example.com' }, fieldPath: 'cluster' },
    { argument: { cluster: '127.0.0.1:3025', assetTag: 'x' }, fieldPath: 'assetTag' },
  ],
  'device.enroll': [
    { argument: { token: 'abc' }, fieldPath: 'cluster' },
    { argument: { cluster: '127.0.0.1:3025', token: 'not a token!' }, fieldPath: 'token' },
    { argument: { cluster: '127.0.0.1:3025', token: 'a'.repeat(257) }, fieldPath: 'token' },
    { argument: { cluster: '127.0.0.1:3025', token: '   ' }, fieldPath: 'token' },
    { argument: { cluster: '127.0.0.1:3025', token: 42 }, fieldPath: 'token' },
    { argument: { cluster: '127.0.0.1:3025', ekPublic: 'AAAA' }, fieldPath: 'ekPublic' },
  ],
  'nodes.list': [
    { argument: { cluster: 'https://auth.example.com' }, fieldPath: 'cluster' },
    { argument: { cluster: '127.0.0.1:3025', login: 'root' }, fieldPath: 'login' },
  ],
  'terminals.open': [
    { argument: { node: 'web', login: 'root', cols: 80 }, fieldPath: 'rows' },
    { argument: { node: 'web', login: '-oProxyCommand=x', cols: 80, rows: 24 }, fieldPath: 'login' },
    { argument: { node: 'web', login: 'a b', cols: 80, rows: 24 }, fieldPath: 'login' },
    { argument: { node: '-web', login: 'root', cols: 80, rows: 24 }, fieldPath: 'node' },
    { argument: { node: 'web', login: 'root', cols: 100_000, rows: 24 }, fieldPath: 'cols' },
    { argument: { node: 'web', login: 'root', cols: 80, rows: 0 }, fieldPath: 'rows' },
    { argument: { node: 'web', login: 'root', cols: 80, rows: 24, command: 'id' }, fieldPath: 'command' },
  ],
  'terminals.input': [
    { argument: { id: 't', data: '' }, fieldPath: 'data' },
    { argument: { id: 't', data: 'x'.repeat(8 * 1024 + 1) }, fieldPath: 'data' },
    { argument: { id: 't', data: 7 }, fieldPath: 'data' },
  ],
  'terminals.resize': [
    { argument: { id: 't', cols: 80.5, rows: 24 }, fieldPath: 'cols' },
    { argument: { id: 't', cols: 80, rows: 501 }, fieldPath: 'rows' },
  ],
  'terminals.close': [{ argument: { id: 'x'.repeat(65) }, fieldPath: 'id' }],
  'prompts.answer': [
    { argument: { id: 'prompt-1', value: { kind: 'keyPin', pin: '12' } }, fieldPath: 'value.pin' },
    { argument: { id: 'prompt-1', value: { kind: 'otpCode', code: 'abcdef' } }, fieldPath: 'value.code' },
    { argument: { id: 'prompt-1', value: { kind: 'password', password: 'x' } }, fieldPath: 'value.kind' },
    { argument: { id: 'prompt-1', value: { kind: 'pivPin', pin: '12345' } }, fieldPath: 'value.pin' },
    {
      argument: { id: 'prompt-1', value: { kind: 'newPivPin', value: '123456789' } },
      fieldPath: 'value.value',
    },
    { argument: { id: 'prompt-1', value: { kind: 'relogin', password: '' } }, fieldPath: 'value.password' },
    { argument: { id: 'prompt-1', value: { kind: 'relogin', user: 'eve' } }, fieldPath: 'value.user' },
    { argument: { value: { kind: 'trustCaPin', trust: true } }, fieldPath: 'id' },
  ],
  'deepLinks.current': [{ argument: { id: 'req-1' }, fieldPath: 'id' }],
  'deepLinks.dismiss': [
    { argument: {}, fieldPath: 'id' },
    { argument: { id: '' }, fieldPath: 'id' },
    { argument: { id: 'a/b' }, fieldPath: 'id' },
    { argument: { id: 'a'.repeat(129) }, fieldPath: 'id' },
  ],
  'deepLinks.inspect': [
    { argument: {}, fieldPath: 'id' },
    { argument: { id: 'a/b' }, fieldPath: 'id' },
    { argument: { id: 'req', token: 'x' }, fieldPath: 'token' },
  ],
  'deepLinks.authorize': [
    { argument: {}, fieldPath: 'id' },
    { argument: { id: 'a'.repeat(129) }, fieldPath: 'id' },
    { argument: { id: 'req', redirect: '//evil' }, fieldPath: 'redirect' },
  ],
  'prompts.cancel': [{ argument: { id: 3 }, fieldPath: 'id' }],
  'prompts.current': [{ argument: { id: 'prompt-1' }, fieldPath: 'id' }],
  'app.info': [{ argument: { verbose: true }, fieldPath: 'verbose' }],
  'app.ready': [{ argument: { screen: 'login' }, fieldPath: 'screen' }],
};

describe('the backend handler table', () => {
  it('has exactly the contract methods', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyport-backend-'));
    const backend = createBackend({ profiles: new ProfileStore(home), keystoreKind: 'file', env: {} });
    // Its profile watcher makes folders in `home`: ready before the test, closed before `home` goes.
    await backend.ready;
    expect(Object.keys(backend.handlers).sort()).toEqual([...methodNames].sort());
    await backend.close();
    await rm(home, { recursive: true, force: true });
  });

  it('rejects every malformed argument with INVALID_ARGUMENT and the field path, changing nothing', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyport-backend-'));
    // Something stored to keep: a trusted cluster and a signed-in profile for it.
    const store = new ProfileStore(home);
    await store.trustCluster({
      address: '127.0.0.1:3025',
      name: 'lab',
      caPin: `sha256:${'a'.repeat(64)}`,
      caPem: 'pem',
      trustedAtMs: 1,
    });
    await store.saveProfile({
      address: '127.0.0.1:3025',
      cluster: 'lab',
      user: 'alice',
      roles: ['access'],
      logins: ['alice'],
      mfaVerified: true,
      validAfterMs: 1,
      expiresMs: Date.now() + 3_600_000,
      keystore: 'file',
      keyId: 'key-1',
      tlsCertPem: 'cert',
      sshCertificate: 'ssh-cert',
    });
    const backend = createBackend({ profiles: store, keystoreKind: 'file', env: {} });
    // Its profile watcher makes folders in `home`: ready before the test, closed before `home` goes.
    await backend.ready;
    const snapshot = async () => {
      const files = (await readdir(home, { recursive: true })).sort();
      return Promise.all(
        files.map(async (f) => [f, await readFile(join(home, f), 'utf8').catch(() => 'directory')]),
      );
    };
    const before = await snapshot();
    for (const method of methodNames) {
      expect(malformed[method].length, method).toBeGreaterThan(0);
      for (const { argument, fieldPath } of malformed[method]) {
        const result = await backend.handlers[method](argument);
        expect(result, `${method} ${JSON.stringify(argument)}`).toMatchObject({
          ok: false,
          error: { code: 'INVALID_ARGUMENT', details: { fieldPath } },
        });
        if (!result.ok) expect(result.error.message.length).toBeGreaterThan(0);
      }
    }
    expect(await snapshot()).toEqual(before);
    await backend.close();
    await rm(home, { recursive: true, force: true });
  });

  it('carries window.keyport: the namespaced API types line up with the handler table', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyport-backend-'));
    const backend = createBackend({ profiles: new ProfileStore(home), keystoreKind: 'file', env: {} });
    // Its profile watcher makes folders in `home`: ready before the test, closed before `home` goes.
    await backend.ready;
    const { handlers } = backend;
    const api: KeyportApi = {
      clusters: {
        add: handlers['clusters.add'],
        list: handlers['clusters.list'],
        remove: handlers['clusters.remove'],
      },
      auth: {
        login: handlers['auth.login'],
        loginPasswordless: handlers['auth.loginPasswordless'],
        connectors: handlers['auth.connectors'],
        loginSso: handlers['auth.loginSso'],
        logout: handlers['auth.logout'],
        status: handlers['auth.status'],
        signInAgain: handlers['auth.signInAgain'],
        sessionNotices: handlers['auth.sessionNotices'],
      },
      mfa: { list: handlers['mfa.list'], add: handlers['mfa.add'], remove: handlers['mfa.remove'] },
      device: { status: handlers['device.status'], enroll: handlers['device.enroll'] },
      nodes: { list: handlers['nodes.list'] },
      deepLinks: {
        current: handlers['deepLinks.current'],
        dismiss: handlers['deepLinks.dismiss'],
        inspect: handlers['deepLinks.inspect'],
        authorize: handlers['deepLinks.authorize'],
      },
      terminals: {
        open: handlers['terminals.open'],
        input: handlers['terminals.input'],
        resize: handlers['terminals.resize'],
        close: handlers['terminals.close'],
      },
      prompts: {
        answer: handlers['prompts.answer'],
        cancel: handlers['prompts.cancel'],
        current: handlers['prompts.current'],
      },
      app: { info: handlers['app.info'], ready: handlers['app.ready'] },
      onPrompt: (listener) => backend.on('onPrompt', listener),
      onPromptClosed: (listener) => backend.on('onPromptClosed', listener),
      onProfileChanged: (listener) => backend.on('onProfileChanged', listener),
      onDeepLink: (listener) => backend.on('onDeepLink', listener),
      onTerminalData: (listener) => backend.on('onTerminalData', listener),
      onTerminalEnded: (listener) => backend.on('onTerminalEnded', listener),
      onSessionNotice: (listener) => backend.on('onSessionNotice', listener),
    };
    expect(await api.app.info()).toMatchObject({
      ok: true,
      value: { name: 'Keyport Connect', keystore: 'file', keyportHome: home, labSecurityKey: false },
    });
    expect(await api.auth.status()).toEqual({ ok: true, value: null });
    await backend.close();
    await rm(home, { recursive: true, force: true });
  });

  it('refuses an answer for a prompt that is not open', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyport-backend-'));
    const backend = createBackend({ profiles: new ProfileStore(home), keystoreKind: 'file', env: {} });
    // Its profile watcher makes folders in `home`: ready before the test, closed before `home` goes.
    await backend.ready;
    const result = await backend.handlers['prompts.answer']({
      id: 'prompt-1',
      value: { kind: 'otpCode', code: '123456' },
    });
    expect(result).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', details: { fieldPath: 'id' } },
    });
    await backend.close();
    await rm(home, { recursive: true, force: true });
  });
});

describe('the backend against a real keyport-auth', () => {
  let cluster: LabCluster;
  let home: string;
  let person: SignedUpUser;

  beforeAll(async () => {
    cluster = await startLabCluster();
    home = await mkdtemp(join(tmpdir(), 'keyport-backend-home-'));
    person = await signUpUserInProcess(cluster, home, 'alice', ['access']);
  });

  afterAll(async () => {
    await cluster?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('logs in with password + OTP answered through prompts.answer; status and events hold no secret', async () => {
    const profiles = new ProfileStore(home);
    const backend = createBackend({ profiles, keystoreKind: 'file', env: {} });
    const events: unknown[] = [];
    const prompts: Prompt[] = [];
    const answers: Promise<unknown>[] = [];
    backend.on('onPromptClosed', (closed) => events.push(closed));
    backend.on('onProfileChanged', (changed: EventPayloads['onProfileChanged']) => events.push(changed));
    const stop = backend.on('onPrompt', (prompt) => {
      events.push(prompt);
      prompts.push(prompt);
      if (prompt.kind === 'otpCode') {
        answers.push(
          backend.handlers['prompts.answer']({
            id: prompt.id,
            value: { kind: 'otpCode', code: nextTotpCode(person.totpSecret) },
          }),
        );
      }
    });

    const login = await backend.handlers['auth.login']({
      address: cluster.address,
      user: person.user,
      password: person.password,
      secondFactor: 'otp',
    });
    expect(login).toMatchObject({ ok: true, value: { user: 'alice', roles: ['access'], keystore: 'file' } });
    expect(prompts.map((p) => p.kind)).toEqual(['otpCode']);
    expect(await Promise.all(answers)).toEqual([{ ok: true, value: null }]);
    stop();

    const status = await backend.handlers['auth.status']();
    expect(status).toEqual(login);
    if (!status.ok || !status.value) throw new Error('no status');
    expect(status.value.expiresMs).toBeGreaterThan(Date.now());
    expect(status.value.address).toBe(cluster.address);

    // The stale OTP prompt cannot be answered again.
    const stale = await backend.handlers['prompts.answer']({
      id: prompts[0]!.id,
      value: { kind: 'otpCode', code: '000000' },
    });
    expect(stale).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });

    const wrongPassword = await backend.handlers['auth.login']({
      address: cluster.address,
      user: person.user,
      password: 'not-the-password',
      secondFactor: 'otp',
    });
    expect(wrongPassword).toMatchObject({ ok: false, error: { code: 'ACCESS_DENIED' } });

    const results = [
      login,
      status,
      wrongPassword,
      await backend.handlers['clusters.list'](),
      await backend.handlers['clusters.add']({ address: cluster.address }),
      await backend.handlers['mfa.list'](),
      await backend.handlers['app.info'](),
      events,
    ];
    const stored = await profiles.getProfile();
    if (!stored) throw new Error('no stored profile');
    const trusted = await profiles.getTrustedCluster({ host: '127.0.0.1', port: cluster.port });
    const everything = JSON.stringify(results);
    for (const secret of [
      'PRIVATE KEY',
      'BEGIN CERTIFICATE',
      'keyId',
      'tlsCertPem',
      'sshCertificate',
      'caPem',
      stored.keyId,
      stored.sshCertificate.split(' ')[1]!,
      person.password,
      person.totpSecret,
      trusted!.caPem.split('\n')[1]!,
    ]) {
      expect(everything).not.toContain(secret);
    }
    expect(results[3]).toMatchObject({
      ok: true,
      value: [{ address: cluster.address, caPin: cluster.caPin }],
    });
    expect(results[5]).toMatchObject({ ok: true, value: [{ type: 'totp' }] });

    const loggedOut = await backend.handlers['auth.logout']();
    expect(loggedOut).toMatchObject({ ok: true, value: { user: 'alice' } });
    expect(await backend.handlers['auth.status']()).toEqual({ ok: true, value: null });
  });

  it('adding a cluster asks to trust its CA pin; cancelling the prompt saves nothing', async () => {
    const freshHome = await mkdtemp(join(tmpdir(), 'keyport-backend-fresh-'));
    try {
      const backend = createBackend({ profiles: new ProfileStore(freshHome), keystoreKind: 'file', env: {} });
      let answer: 'cancel' | 'refuse' | 'trust' = 'cancel';
      backend.on('onPrompt', (prompt) => {
        expect(prompt).toMatchObject({ kind: 'trustCaPin', address: cluster.address, caPin: cluster.caPin });
        void (answer === 'cancel'
          ? backend.handlers['prompts.cancel']({ id: prompt.id })
          : backend.handlers['prompts.answer']({
              id: prompt.id,
              value: { kind: 'trustCaPin', trust: answer === 'trust' },
            }));
      });
      const cancelled = await backend.handlers['clusters.add']({ address: cluster.address });
      expect(cancelled).toMatchObject({ ok: false, error: { code: 'CANCELLED' } });
      expect(await backend.handlers['clusters.list']()).toEqual({ ok: true, value: [] });

      // "Don't trust" is an answer, not a cancel: refused just the same, nothing saved.
      answer = 'refuse';
      const refused = await backend.handlers['clusters.add']({ address: cluster.address });
      expect(refused).toMatchObject({ ok: false, error: { code: 'CANCELLED' } });
      expect(await backend.handlers['clusters.list']()).toEqual({ ok: true, value: [] });

      answer = 'trust';
      const added = await backend.handlers['clusters.add']({ address: cluster.address });
      expect(added).toMatchObject({ ok: true, value: { address: cluster.address, caPin: cluster.caPin } });
      expect(JSON.stringify(added)).not.toContain('BEGIN CERTIFICATE');
      expect(await backend.handlers['clusters.remove']({ address: cluster.address })).toEqual({
        ok: true,
        value: null,
      });
      expect(await backend.handlers['clusters.list']()).toEqual({ ok: true, value: [] });
    } finally {
      await rm(freshHome, { recursive: true, force: true });
    }
  });
});
