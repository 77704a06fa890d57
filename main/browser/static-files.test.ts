import { describe, expect, it } from 'vitest';
import { injectBridge, mimeType, resolveRequestPath } from './static-files';

describe('resolveRequestPath', () => {
  it('maps the index, the bridge and files', () => {
    expect(resolveRequestPath('/')).toEqual({ kind: 'index' });
    expect(resolveRequestPath('/index.html?x=1')).toEqual({ kind: 'index' });
    expect(resolveRequestPath('/keyport-bridge.js')).toEqual({ kind: 'bridge' });
    expect(resolveRequestPath('/assets/index-1a2b.js')).toEqual({
      kind: 'file',
      segments: ['assets', 'index-1a2b.js'],
    });
    expect(resolveRequestPath('/assets/a%20b.css')).toEqual({
      kind: 'file',
      segments: ['assets', 'a b.css'],
    });
  });

  it.each([
    '/../secret.txt',
    '/assets/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/.%2e/secret.txt',
    '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/assets%2F..%2Fsecret.txt',
    '/..%5csecret.txt',
    '/..\\secret.txt',
    '/index.html%00.js',
    '/%00',
    '//etc/passwd',
    '/assets//x.js',
    '/.env',
    '/assets/.hidden',
    '/%E0%A4%A',
    'http://127.0.0.1/secret.txt',
    '*',
    '',
  ])('refuses %j', (path) => {
    expect(resolveRequestPath(path).kind).toBe('refused');
  });
});

describe('injectBridge', () => {
  it('puts the bridge before the first script', () => {
    const html = '<head><title>x</title><script type="module" src="./assets/a.js"></script></head>';
    const out = injectBridge(html);
    expect(out.indexOf('<script src="/keyport-bridge.js"></script>')).toBe(html.indexOf('<script'));
    expect(out).toContain('<script type="module" src="./assets/a.js"></script>');
  });

  it('falls back to the end of head, then the start', () => {
    expect(injectBridge('<head></head>')).toMatch(/<script src="\/keyport-bridge.js"><\/script>\s*<\/head>/);
    expect(injectBridge('<p>hi</p>').startsWith('<script src="/keyport-bridge.js"></script>')).toBe(true);
  });
});

it('names MIME types', () => {
  expect(mimeType('a/index.html')).toBe('text/html; charset=utf-8');
  expect(mimeType('x.JS')).toBe('text/javascript; charset=utf-8');
  expect(mimeType('x.css')).toBe('text/css; charset=utf-8');
  expect(mimeType('x.woff2')).toBe('font/woff2');
  expect(mimeType('x.svg')).toBe('image/svg+xml');
  expect(mimeType('x.unknown')).toBe('application/octet-stream');
});
