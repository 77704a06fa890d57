// The browser host over real sockets: node:http requests and ws clients against startBrowserHost with a
// real backend (temp home) and a small dist/ written here, so these tests do not depend on a build.
import { request as httpRequest } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ProfileStore } from '../../client/profiles';
import { eventNames } from '../../preload/contract';
import type { Result } from '../../preload/contract';
import { createBackend } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { RENDERER_SECURITY_HEADERS } from '../csp';
import { MAX_FRAME_BYTES, SESSION_ENDED } from './bridge-server';
import { startBrowserHost } from './host';
import type { BrowserHost } from './host';

const SECRET = 'outside-the-renderer-folder';
const INDEX = `<!doctype html>
<html lang="en">
  <head>
    <title>Keyport Connect</title>
    <script type="module" crossorigin src="./assets/index-abc.js"></script>
  </head>
  <body><div id="root"></div></body>
</html>
`;

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(
  port: number,
  options: { method?: string; path?: string; headers?: OutgoingHttpHeaders; body?: string } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

function tokenOf(url: string): string {
  const match = /#launch=([A-Za-z0-9_-]{43})$/.exec(url);
  if (!match?.[1]) throw new Error(`no launch token in ${url}`);
  return match[1];
}

function postToken(host: BrowserHost, token: unknown, headers: OutgoingHttpHeaders = {}): Promise<Response> {
  return send(host.port, {
    method: 'POST',
    path: '/session',
    headers: { Origin: host.origin, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ token }),
  });
}

/** Spends a fresh launch token; the session it becomes. */
async function newSession(host: BrowserHost): Promise<string> {
  const response = await postToken(host, tokenOf(host.newLaunchUrl()));
  expect(response.status).toBe(200);
  return (JSON.parse(response.body) as { session: string }).session;
}

/** What the bridge offers in Sec-WebSocket-Protocol for `session`. */
function protocolsFor(session: string): string[] {
  return ['keyport.v1', `keyport-session.${session}`];
}

/** A client socket that buffers what it receives. */
class Client {
  readonly messages: unknown[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(
    readonly ws: WebSocket,
    /** The headers of the 101 response. */
    readonly upgradeHeaders: Record<string, string | string[] | undefined> = {},
  ) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString()));
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    );
  }

  async next<T>(match: (message: Record<string, unknown>) => boolean): Promise<T> {
    for (;;) {
      const index = this.messages.findIndex((m) => match(m as Record<string, unknown>));
      if (index >= 0) return this.messages.splice(index, 1)[0] as T;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async call(id: number, method: string, argument?: unknown): Promise<Result<unknown>> {
    this.ws.send(JSON.stringify({ id, method, argument }));
    return this.reply(id);
  }

  async reply(id: number): Promise<Result<unknown>> {
    return (await this.next<{ result: Result<unknown> }>((m) => m.id === id)).result;
  }
}

/** Opens /bridge: the open client, or the HTTP status the upgrade was refused with. */
function openBridge(
  port: number,
  headers: Record<string, string>,
  protocols: string[] = [],
  path = '/bridge',
): Promise<Client | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols, { headers });
    let upgradeHeaders: Record<string, string | string[] | undefined> = {};
    ws.once('upgrade', (res) => (upgradeHeaders = res.headers));
    ws.once('open', () => resolve(new Client(ws, upgradeHeaders)));
    ws.once('unexpected-response', (req, res) => {
      expect(res.headers['set-cookie']).toBeUndefined();
      resolve(res.statusCode ?? 0);
      res.resume();
      req.destroy();
    });
    ws.once('error', reject);
  });
}

async function bridge(host: BrowserHost, session?: string): Promise<Client> {
  const client = await openBridge(
    host.port,
    { Origin: host.origin },
    protocolsFor(session ?? (await newSession(host))),
  );
  if (typeof client === 'number') throw new Error(`bridge refused: ${client}`);
  return client;
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let dir: string;
let distDir: string;
let backend: Backend;
let host: BrowserHost;
const clients: Client[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyport-browser-host-'));
  distDir = join(dir, 'dist');
  await mkdir(join(distDir, 'renderer', 'assets'), { recursive: true });
  await mkdir(join(distDir, 'preload'), { recursive: true });
  await writeFile(join(distDir, 'renderer', 'index.html'), INDEX);
  await writeFile(join(distDir, 'renderer', 'assets', 'index-abc.js'), 'console.log("renderer");\n');
  await writeFile(join(distDir, 'renderer', 'assets', 'style.css'), 'body { margin: 0; }\n');
  await writeFile(join(distDir, 'renderer', '.hidden'), SECRET);
  await writeFile(join(distDir, 'preload', 'keyport-bridge.js'), '(function(){ /* bridge */ })();\n');
  await writeFile(join(distDir, 'secret.txt'), SECRET);
  await writeFile(join(dir, 'secret.txt'), SECRET);
  await symlink(distDir, join(distDir, 'renderer', 'assets', 'link-out'));
  backend = createBackend({ profiles: new ProfileStore(join(dir, 'home')), keystoreKind: 'file', env: {} });
  await backend.ready;
  host = await startBrowserHost({ backend, distDir });
});

afterAll(async () => {
  for (const client of clients) client.ws.terminate();
  await host?.close();
  // The backend's profile watcher writes under `dir`: closed first, so the removal does not race it.
  await backend?.close();
  await rm(dir, { recursive: true, force: true });
});

function expectSecurityHeaders(response: Response): void {
  for (const [name, value] of Object.entries(RENDERER_SECURITY_HEADERS)) {
    expect(response.headers[name.toLowerCase()], name).toBe(value);
  }
}

describe('static files', () => {
  it('serves the index with the bridge injected before the renderer script', async () => {
    for (const path of ['/', '/index.html']) {
      const response = await send(host.port, { path });
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(response.headers['cache-control']).toBe('no-store');
      expectSecurityHeaders(response);
      const bridgeAt = response.body.indexOf('<script src="/keyport-bridge.js"></script>');
      expect(bridgeAt).toBeGreaterThan(0);
      expect(bridgeAt).toBeLessThan(response.body.indexOf('<script type="module"'));
    }
  });

  it('serves the bridge, assets and 404s with the security headers', async () => {
    const bridgeScript = await send(host.port, { path: '/keyport-bridge.js' });
    expect(bridgeScript.status).toBe(200);
    expect(bridgeScript.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(bridgeScript.body).toContain('/* bridge */');
    expectSecurityHeaders(bridgeScript);

    const script = await send(host.port, { path: '/assets/index-abc.js' });
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expectSecurityHeaders(script);
    const css = await send(host.port, { path: '/assets/style.css?v=1' });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');

    const missing = await send(host.port, { path: '/assets/missing.js' });
    expect(missing.status).toBe(404);
    expectSecurityHeaders(missing);
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await send(host.port, { method: 'HEAD', path: '/' });
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(INDEX.length);
    expect(head.body).toBe('');
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const response = await send(host.port, { method, path: '/assets/index-abc.js' });
      expect(response.status, method).toBe(405);
      expect(response.headers.allow).toBe('GET, HEAD');
      expectSecurityHeaders(response);
    }
  });

  it.each([
    '/../secret.txt',
    '/../../secret.txt',
    '/assets/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/%2e%2e/secret.txt',
    '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/assets%2f..%2f..%2fsecret.txt',
    '/..%5csecret.txt',
    '/..\\secret.txt',
    '/assets/link-out/secret.txt',
    '/.hidden',
    '/%2ehidden',
    '/index.html%00',
    '//secret.txt',
    'http://127.0.0.1/secret.txt',
  ])('refuses the traversal %s', async (path) => {
    const response = await send(host.port, { path });
    expect([400, 404]).toContain(response.status);
    expect(response.body).not.toContain(SECRET);
    expectSecurityHeaders(response);
  });

  it('refuses a request for another host (DNS rebinding)', async () => {
    for (const hostHeader of [
      'localhost:' + host.port,
      'evil.example',
      `evil.example:${host.port}`,
      '127.0.0.1',
      `127.0.0.1:${host.port + 1}`,
    ]) {
      const response = await send(host.port, { headers: { Host: hostHeader } });
      expect(response.status, hostHeader).toBe(421);
      expect(response.body).not.toContain('keyport-bridge');
      expectSecurityHeaders(response);
    }
  });

  it('listens on 127.0.0.1 only', async () => {
    expect(host.origin).toBe(`http://127.0.0.1:${host.port}`);
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const socket = connect({ host: '::1', port: host.port });
      socket.on('connect', () => {
        socket.destroy();
        resolve(Object.assign(new Error('connected'), { code: 'CONNECTED' }));
      });
      socket.on('error', resolve);
    });
    expect(error.code).not.toBe('CONNECTED');
  });
});

describe('launch token exchange', () => {
  it('gives a launch URL with a one-time token in its fragment', () => {
    expect(host.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${host.port}/#launch=[A-Za-z0-9_-]{43}$`));
    expect(tokenOf(host.newLaunchUrl())).not.toBe(tokenOf(host.url));
  });

  it('turns a valid token into a session in the body, once, and sets no cookie', async () => {
    const token = tokenOf(host.newLaunchUrl());
    const first = await postToken(host, token);
    expect(first.status).toBe(200);
    expectSecurityHeaders(first);
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(first.headers['cache-control']).toBe('no-store');
    expect(first.headers['set-cookie']).toBeUndefined();
    const body = JSON.parse(first.body) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['session']);
    expect(body.session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(body.session as string, 'base64url')).toHaveLength(32);
    expect(body.session).not.toBe(token);

    const second = await postToken(host, token);
    expect(second.status).toBe(403);
    expect(second.headers['set-cookie']).toBeUndefined();
    expect(second.body).not.toContain(body.session as string);
  });

  it('refuses wrong and malformed tokens', async () => {
    const token = tokenOf(host.newLaunchUrl());
    const wrong = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const candidate of [wrong, token.slice(1), '', 42, null, { token }]) {
      const response = await postToken(host, candidate);
      expect(response.status).toBe(403);
      expect(response.headers['set-cookie']).toBeUndefined();
    }
    // None of that spent the real token.
    expect((await postToken(host, token)).status).toBe(200);
  });

  it('refuses an expired token', async () => {
    let nowMs = Date.now();
    const shortLived = await startBrowserHost({ backend, distDir, tokenTtlMs: 2 * 60_000, now: () => nowMs });
    try {
      const early = tokenOf(shortLived.url);
      const late = tokenOf(shortLived.newLaunchUrl());
      // One millisecond before its end a token still works; at its end it is refused.
      nowMs += 2 * 60_000 - 1;
      expect((await postToken(shortLived, late)).status).toBe(200);
      nowMs += 1;
      expect((await postToken(shortLived, early)).status).toBe(403);
    } finally {
      await shortLived.close();
    }
  });

  it('refuses a token from another origin, another site or not as JSON', async () => {
    const token = tokenOf(host.newLaunchUrl());
    expect((await postToken(host, token, { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await postToken(host, token, { Origin: `http://localhost:${host.port}` })).status).toBe(403);
    expect((await postToken(host, token, { Origin: '' })).status).toBe(403);
    expect((await postToken(host, token, { 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
    expect((await postToken(host, token, { Host: `localhost:${host.port}` })).status).toBe(421);
    expect((await postToken(host, token, { 'Content-Type': 'text/plain' })).status).toBe(415);
    const big = await send(host.port, {
      method: 'POST',
      path: '/session',
      headers: { Origin: host.origin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ token, pad: 'x'.repeat(4096) }),
    });
    expect(big.status).toBe(413);
    expect((await send(host.port, { path: '/session' })).status).toBe(405);
    // Still unspent.
    expect((await postToken(host, token)).status).toBe(200);
  });
});

describe('bridge WebSocket', () => {
  it('refuses an upgrade without a live session issued by this host, before upgrading', async () => {
    const headers = { Origin: host.origin };
    const session = await newSession(host);
    const forged = Buffer.alloc(32, 7).toString('base64url');
    for (const protocols of [
      [],
      ['keyport.v1'],
      [`keyport-session.${session}`],
      [`keyport-session.${session}`, 'keyport.v1'],
      ['keyport.v2', `keyport-session.${session}`],
      ['keyport.v1', `keyport-session.${session}`, 'chat'],
      ['keyport.v1', `keyport-session-${session}`],
      ['keyport.v1', `keyport-session.${session.slice(1)}`],
      protocolsFor(forged),
    ]) {
      expect(await openBridge(host.port, headers, protocols), protocols.join()).toBe(403);
    }
    // Cookies count for nothing, whatever they hold.
    for (const cookie of [`keyport_session=${session}`, `keyport_session=${forged}`]) {
      expect(await openBridge(host.port, { ...headers, Cookie: cookie })).toBe(403);
    }
    // A session from another host on another port is not one of this host's.
    const other = await startBrowserHost({ backend, distDir });
    try {
      expect(await openBridge(host.port, headers, protocolsFor(await newSession(other)))).toBe(403);
    } finally {
      await other.close();
    }
    expect(host.connections).toBe(0);
    // None of that used the session up.
    const client = await bridge(host, session);
    client.ws.close();
    await client.closed;
  });

  it('refuses a good session from the wrong origin or host', async () => {
    const protocols = protocolsFor(await newSession(host));
    for (const Origin of ['http://evil.example', `http://localhost:${host.port}`, 'null']) {
      expect(await openBridge(host.port, { Origin }, protocols), Origin).toBe(403);
    }
    expect(await openBridge(host.port, {}, protocols)).toBe(403);
    expect(
      await openBridge(host.port, { Origin: host.origin, Host: `localhost:${host.port}` }, protocols),
    ).toBe(421);
    expect(
      await openBridge(host.port, { Origin: host.origin, Host: `127.0.0.1:${host.port + 1}` }, protocols),
    ).toBe(421);
    expect(await openBridge(host.port, { Origin: host.origin }, protocols, '/session')).toBe(404);
  });

  it('selects keyport.v1, never echoes the session and sets no cookie', async () => {
    const session = await newSession(host);
    const client = await bridge(host, session);
    clients.push(client);
    expect(client.ws.protocol).toBe('keyport.v1');
    expect(client.upgradeHeaders['sec-websocket-protocol']).toBe('keyport.v1');
    expect(client.upgradeHeaders['set-cookie']).toBeUndefined();
    expect(JSON.stringify(client.upgradeHeaders)).not.toContain(session);
  });

  it('carries a call: app.info', async () => {
    const client = await bridge(host);
    clients.push(client);
    const result = await client.call(1, 'app.info');
    expect(result).toMatchObject({ ok: true, value: { name: 'Keyport Connect', keystore: 'file' } });
    expect(await client.call(2, 'clusters.list', {})).toEqual({ ok: true, value: [] });
  });

  it('allows one open socket per session; once it closes the session connects again (a reload)', async () => {
    const session = await newSession(host);
    const before = host.connections;
    const first = await bridge(host, session);
    expect(await openBridge(host.port, { Origin: host.origin }, protocolsFor(session))).toBe(409);
    expect(host.connections).toBe(before + 1);
    // The first socket is untouched by the refused one.
    expect((await first.call(1, 'app.info')).ok).toBe(true);

    first.ws.close(1001);
    await first.closed;
    await until(() => host.connections === before);
    const again = await bridge(host, session);
    clients.push(again);
    expect((await again.call(1, 'app.info')).ok).toBe(true);
    expect(await openBridge(host.port, { Origin: host.origin }, protocolsFor(session))).toBe(409);
  });

  it('answers bad messages with INVALID_ARGUMENT and stays open', async () => {
    const client = await bridge(host);
    clients.push(client);
    const invalid = (message: string) => ({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', message, details: {} },
    });
    const frames: [string, unknown][] = [
      ['{"id":10,"method":"nope"}', invalid('Unknown method "nope".')],
      ['{"id":11}', invalid('A call names its method.')],
      ['{"id":12,"method":"app.info","extra":true}', invalid('Unexpected field "extra".')],
      ['{"id":13,"method":"app.info","__proto__":{"x":1}}', invalid('Unexpected field "__proto__".')],
      ['{"id":14,"method":"hasOwnProperty"}', invalid('Unknown method "hasOwnProperty".')],
      ['{"id":15,"method":"constructor"}', invalid('Unknown method "constructor".')],
      [
        '{"id":16,"method":"clusters.add","argument":{"address":"a:1","__proto__":{"caPin":"x"}}}',
        invalid('Unexpected field "__proto__".'),
      ],
    ];
    for (const [frame, expected] of frames) {
      client.ws.send(frame);
      const id = (JSON.parse(frame) as { id: number }).id;
      expect(await client.reply(id), frame).toEqual(expected);
    }
    // The backend validates the argument itself.
    expect(await client.call(17, 'app.info', { verbose: true })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', details: { fieldPath: 'verbose' } },
    });
    expect((await client.call(18, 'app.info')).ok).toBe(true);
  });

  it('closes on a frame it cannot answer', async () => {
    for (const [frame, code] of [
      ['not json', 1008],
      ['[1,2]', 1008],
      ['{"method":"app.info"}', 1008],
      [Buffer.from([1, 2, 3]), 1003],
      ['x'.repeat(MAX_FRAME_BYTES + 1), 1009],
    ] as const) {
      const client = await bridge(host);
      clients.push(client);
      client.ws.send(frame);
      expect((await client.closed).code).toBe(code);
    }
  });

  it('counts a window as shown until its page says it is hidden, and a bad visibility frame closes it', async () => {
    // A host of its own: the shared one's sockets from earlier tests may still be closing.
    const own = await startBrowserHost({ backend, distDir });
    try {
      expect(own.shownWindows).toBe(0);
      const client = await bridge(own);
      clients.push(client);
      expect(own.shownWindows).toBe(1);
      client.ws.send('{"visibility":"hidden"}');
      await until(() => own.shownWindows === 0);
      expect(own.connections).toBe(1);
      // Still a working bridge: hidden is not closed.
      expect((await client.call(30, 'app.info')).ok).toBe(true);
      client.ws.send('{"visibility":"visible"}');
      await until(() => own.shownWindows === 1);
      client.ws.send('{"visibility":"minimized"}');
      expect((await client.closed).code).toBe(1008);
      await until(() => own.shownWindows === 0 && own.connections === 0);
    } finally {
      await own.close();
    }
  });

  it('pushes backend events to every open socket', async () => {
    const one = await bridge(host);
    const two = await bridge(host);
    clients.push(one, two);
    const ceremony = backend.broker.ceremony();
    ceremony.securityKey.tap('Tap any security key');
    for (const client of [one, two]) {
      const pushed = await client.next<{ payload: { id: string } }>((m) => m.event === 'onPrompt');
      expect(pushed).toEqual({
        event: 'onPrompt',
        payload: { id: pushed.payload.id, kind: 'tapKey', message: 'Tap any security key' },
      });
    }
    ceremony.finish();
    for (const client of [one, two]) {
      expect(await client.next((m) => m.event === 'onPromptClosed')).toMatchObject({
        payload: { reason: 'finished' },
      });
    }
  });
});

describe('session lifetime', () => {
  it('ends a session after sessionTtlMs: its socket closes and it opens nothing more', async () => {
    // The host's clock is the test's: the session lives while the test works, however slow the machine,
    // and ends when the test moves the clock past its lifetime (the socket's timer then sees it ended).
    let now = Date.now();
    const shortLived = await startBrowserHost({ backend, distDir, sessionTtlMs: 1_000, now: () => now });
    try {
      const session = await newSession(shortLived);
      const client = await bridge(shortLived, session);
      expect((await client.call(1, 'app.info')).ok).toBe(true);
      const unused = await newSession(shortLived);
      expect(shortLived.connections).toBe(1);
      now += 1_001;
      expect(await client.closed).toEqual({ code: SESSION_ENDED, reason: 'Session ended.' });
      await until(() => shortLived.connections === 0);
      const headers = { Origin: shortLived.origin };
      expect(await openBridge(shortLived.port, headers, protocolsFor(session))).toBe(403);
      expect(await openBridge(shortLived.port, headers, protocolsFor(unused))).toBe(403);
      // A new launch token still gives a new session.
      const fresh = await bridge(shortLived);
      expect((await fresh.call(1, 'app.info')).ok).toBe(true);
    } finally {
      await shortLived.close();
    }
  });

  it('revokeSessions() closes every socket and refuses every session issued so far', async () => {
    const own = await startBrowserHost({ backend, distDir });
    try {
      const sessions = [await newSession(own), await newSession(own), await newSession(own)];
      const open = [await bridge(own, sessions[0]), await bridge(own, sessions[1])];
      const token = tokenOf(own.newLaunchUrl());
      own.revokeSessions();
      for (const client of open) {
        expect(await client.closed).toEqual({ code: SESSION_ENDED, reason: 'Session ended.' });
      }
      await until(() => own.connections === 0);
      for (const session of sessions) {
        expect(await openBridge(own.port, { Origin: own.origin }, protocolsFor(session))).toBe(403);
      }
      // Launch tokens are not sessions: an unspent one still opens a new session.
      const response = await postToken(own, token);
      expect(response.status).toBe(200);
      const fresh = await bridge(own, (JSON.parse(response.body) as { session: string }).session);
      expect((await fresh.call(1, 'app.info')).ok).toBe(true);
    } finally {
      await own.close();
    }
  });
});

it('close() ends sockets, the server, the sessions and the event subscriptions', async () => {
  let subscribed = 0;
  const counted: Backend = {
    ...backend,
    on(event, listener) {
      subscribed += 1;
      const unsubscribe = backend.on(event, listener);
      return () => {
        subscribed -= 1;
        unsubscribe();
      };
    },
  };
  const own = await startBrowserHost({ backend: counted, distDir });
  // One subscription per contract event.
  expect(subscribed).toBe(eventNames.length);
  const client = await bridge(own);
  expect(own.connections).toBe(1);
  await own.close();
  expect((await client.closed).code).toBe(1001);
  expect(subscribed).toBe(0);
  await expect(send(own.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  await own.close();
});
