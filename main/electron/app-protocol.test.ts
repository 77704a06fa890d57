import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RENDERER_SECURITY_HEADERS } from '../csp';
import {
  APP_ENTRY_URL,
  appSchemePrivileges,
  createAppProtocolHandler,
  isAppUrl,
  mimeTypeOf,
  resolveAppRequest,
} from './app-protocol';

let base: string;
let root: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'keyport-app-protocol-'));
  root = join(base, 'renderer');
  mkdirSync(join(root, 'assets'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>Keyport Connect</title>');
  writeFileSync(join(root, 'assets', 'index-abc.js'), 'console.log(1);');
  writeFileSync(join(root, 'assets', 'index-abc.css'), 'body{}');
  writeFileSync(join(root, 'assets', 'a b.svg'), '<svg/>');
  writeFileSync(join(base, 'secret.txt'), 'outside the root');
  mkdirSync(join(base, 'outside'));
  writeFileSync(join(base, 'outside', 'x.js'), 'outside');
  symlinkSync(join(base, 'secret.txt'), join(root, 'assets', 'link.txt'));
  symlinkSync(join(base, 'outside'), join(root, 'linked-dir'));
  symlinkSync(join(root, 'index.html'), join(root, 'assets', 'inner-link.html'));
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('app:// scheme', () => {
  it('is standard, secure and fetchable, and never bypasses the CSP', () => {
    expect(appSchemePrivileges).toEqual({
      scheme: 'app',
      privileges: { standard: true, secure: true, supportFetchAPI: true },
    });
    expect(appSchemePrivileges.privileges?.bypassCSP).toBeUndefined();
    expect(APP_ENTRY_URL).toBe('app://keyport/index.html');
  });

  it.each([
    ['app://keyport/index.html', true],
    ['app://keyport', true],
    ['APP://KEYPORT/x', true],
    ['app://evil/index.html', false],
    ['app://keyport.evil/index.html', false],
    ['app://user@keyport/index.html', false],
    ['app://user:pw@keyport/', false],
    ['app://keyport:8080/', false],
    ['https://keyport/index.html', false],
    ['file:///index.html', false],
    ['not a url', false],
  ])('isAppUrl(%s) is %s', (url, expected) => {
    expect(isAppUrl(url)).toBe(expected);
  });
});

describe('resolveAppRequest', () => {
  it('maps / to index.html and files under the root to themselves, with their MIME type', async () => {
    await expect(resolveAppRequest('app://keyport/', root)).resolves.toEqual({
      status: 200,
      path: join(root, 'index.html'),
      mimeType: 'text/html; charset=utf-8',
    });
    await expect(resolveAppRequest('app://keyport', root)).resolves.toMatchObject({ status: 200 });
    await expect(resolveAppRequest('app://keyport/assets/index-abc.js?v=1#top', root)).resolves.toEqual({
      status: 200,
      path: join(root, 'assets', 'index-abc.js'),
      mimeType: 'text/javascript; charset=utf-8',
    });
    await expect(resolveAppRequest('app://keyport/assets/a%20b.svg', root)).resolves.toMatchObject({
      status: 200,
      mimeType: 'image/svg+xml',
    });
  });

  it('follows a symlink that stays inside the root', async () => {
    await expect(resolveAppRequest('app://keyport/assets/inner-link.html', root)).resolves.toMatchObject({
      status: 200,
      path: join(root, 'index.html'),
    });
  });

  it.each([
    'app://evil/index.html',
    'app://keyport.example/index.html',
    'app://attacker@keyport/index.html',
    'app://keyport:1/index.html',
    'file:///etc/passwd',
    'https://keyport/index.html',
  ])('refuses %s (not the app origin)', async (url) => {
    await expect(resolveAppRequest(url, root)).resolves.toMatchObject({ status: 403 });
  });

  it.each([
    ['a missing file', 'app://keyport/missing.js'],
    ['a directory', 'app://keyport/assets'],
    ['a directory with a slash', 'app://keyport/assets/'],
    ['an empty segment', 'app://keyport/assets//index-abc.js'],
    ['an encoded parent', 'app://keyport/%2e%2e/secret.txt'],
    ['an encoded slash', 'app://keyport/assets%2f..%2f..%2fsecret.txt'],
    ['an encoded backslash', 'app://keyport/..%5csecret.txt'],
    ['an encoded parent and slash', 'app://keyport/..%2fsecret.txt'],
    ['a double-encoded parent', 'app://keyport/%252e%252e/secret.txt'],
    ['an absolute path in a segment', 'app://keyport/%2fetc%2fpasswd'],
    ['a drive letter', 'app://keyport/C:%5cWindows%5cwin.ini'],
    ['a NUL byte', 'app://keyport/index.html%00.js'],
    ['a malformed escape', 'app://keyport/%E0%A4%A'],
    ['a symlink to a file outside the root', 'app://keyport/assets/link.txt'],
    ['a symlinked directory outside the root', 'app://keyport/linked-dir/x.js'],
  ])('answers 404 for %s', async (_name, url) => {
    await expect(resolveAppRequest(url, root)).resolves.toMatchObject({ status: 404 });
  });

  it('never reaches above the root through dot segments the URL parser removes', async () => {
    // The parser folds these to /secret.txt, which does not exist inside the root.
    for (const url of ['app://keyport/../secret.txt', 'app://keyport/assets/../../secret.txt']) {
      await expect(resolveAppRequest(url, root)).resolves.toMatchObject({ status: 404 });
    }
  });
});

describe('mimeTypeOf', () => {
  it('knows the renderer build outputs and falls back to octet-stream', () => {
    expect(mimeTypeOf('a.CSS')).toBe('text/css; charset=utf-8');
    expect(mimeTypeOf('a.woff2')).toBe('font/woff2');
    expect(mimeTypeOf('a.wasm')).toBe('application/octet-stream');
    expect(mimeTypeOf('Makefile')).toBe('application/octet-stream');
  });
});

describe('createAppProtocolHandler', () => {
  const expectSecurityHeaders = (response: Response) => {
    for (const [name, value] of Object.entries(RENDERER_SECURITY_HEADERS)) {
      expect(response.headers.get(name), name).toBe(value);
    }
  };

  it('serves a file with its type and every renderer security header', async () => {
    const handle = createAppProtocolHandler(root);
    const response = await handle(new Request('app://keyport/index.html'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expectSecurityHeaders(response);
    expect(await response.text()).toContain('<title>Keyport Connect</title>');
  });

  it('answers HEAD without a body', async () => {
    const response = await createAppProtocolHandler(root)(
      new Request('app://keyport/assets/index-abc.css', { method: 'HEAD' }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await response.text()).toBe('');
  });

  it.each([
    ['app://keyport/missing.js', 'GET', 404],
    ['app://keyport/assets/link.txt', 'GET', 404],
    ['app://other/index.html', 'GET', 403],
    ['app://keyport/index.html', 'POST', 405],
  ])('answers %s (%s) with %i, still carrying the security headers', async (url, method, status) => {
    const response = await createAppProtocolHandler(root)(new Request(url, { method }));
    expect(response.status).toBe(status);
    expectSecurityHeaders(response);
    expect(await response.text()).not.toContain('outside the root');
  });
});
