import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../proto/errors';
import { DeepLinkError, isSameOriginPath, MAX_DEEP_LINK_LENGTH, parseDeepLink } from './deep-link';
import type { DeepLinkRefusal, KnownCluster } from './deep-link';

const clusters: KnownCluster[] = [
  { address: 'auth.example.com:3025', name: 'example', publicAddr: 'web.example.com:443' },
  { address: '10.0.0.5:3025', name: 'replicated', replicas: ['10.0.0.5:3025', 'b.internal:4025'] },
  { address: '[::1]:3025', name: 'v6' },
];
const ID = 'req-1_AbC';
const TOKEN = 'tOkEn_0123456789-abcdefghij';

function link({
  cluster = 'example',
  path = '/authorize-web-session',
  query = `id=${ID}&token=${TOKEN}&redirect=${encodeURIComponent('/web/home?tab=1')}`,
} = {}) {
  return `keyport://${cluster}${path}?${query}`;
}

function refusal(text: unknown): {
  reason: DeepLinkRefusal;
  code: string;
  fieldPath?: string;
  message: string;
} {
  try {
    parseDeepLink(text, clusters);
  } catch (error) {
    expect(error).toBeInstanceOf(DeepLinkError);
    const refused = error as DeepLinkError;
    return {
      reason: refused.reason,
      code: refused.code,
      fieldPath: refused.fields.fieldPath,
      message: refused.message,
    };
  }
  throw new Error('accepted');
}

describe('parseDeepLink', () => {
  it('parses an authorize-web-session link into a plain result', () => {
    expect(parseDeepLink(link(), clusters)).toEqual({
      kind: 'authorize-web-session',
      cluster: { address: 'auth.example.com:3025', name: 'example' },
      id: ID,
      token: TOKEN,
      redirect: '/web/home?tab=1',
    });
  });

  it('finds the cluster by name, address, public address or a replica, in any case, the port defaulting to 3025', () => {
    for (const cluster of [
      'example',
      'EXAMPLE',
      'auth.example.com:3025',
      'auth.example.com',
      'web.example.com:443',
    ]) {
      expect(parseDeepLink(link({ cluster }), clusters).cluster.address, cluster).toBe(
        'auth.example.com:3025',
      );
    }
    expect(parseDeepLink(link({ cluster: 'b.internal:4025' }), clusters).cluster).toEqual({
      address: '10.0.0.5:3025',
      name: 'replicated',
    });
    expect(parseDeepLink(link({ cluster: '[::1]:3025' }), clusters).cluster.name).toBe('v6');
    expect(parseDeepLink(link().replace('keyport://', 'KEYPORT://'), clusters).kind).toBe(
      'authorize-web-session',
    );
  });

  it('refuses a cluster it does not trust as unknown-cluster (NOT_FOUND)', () => {
    for (const cluster of ['other', 'auth.example.com:3026', 'web.example.com', 'evil.example:3025']) {
      expect(refusal(link({ cluster })), cluster).toMatchObject({
        reason: 'unknown-cluster',
        code: 'NOT_FOUND',
        fieldPath: 'cluster',
      });
    }
    // Nothing is trusted: every link is for an unknown cluster.
    expect(() => parseDeepLink(link(), [])).toThrow(DeepLinkError);
  });

  it('refuses another path as unsupported-path', () => {
    for (const path of [
      '',
      '/',
      '/login',
      '/authorize-web-session/',
      '/Authorize-Web-Session',
      '/constructor',
    ]) {
      expect(refusal(link({ path })), path).toMatchObject({
        reason: 'unsupported-path',
        code: 'INVALID_ARGUMENT',
        fieldPath: 'path',
      });
    }
  });

  it('refuses what is not a keyport:// link, or is too long, as malformed', () => {
    for (const text of [
      'https://example/authorize-web-session',
      'keyport:example/authorize-web-session',
      'keyport:/example/authorize-web-session',
      '',
      `${link()}#fragment`,
      link({ cluster: 'user@example' }),
      link({ cluster: '' }),
      link({ cluster: 'exa mple' }),
      link({ cluster: 'example:99999999' }),
      `${link()}&x=${'a'.repeat(MAX_DEEP_LINK_LENGTH)}`,
    ]) {
      expect(refusal(text).reason, text.slice(0, 80)).toBe('malformed');
    }
    for (const value of [undefined, null, 42, {}, ['keyport://example']]) {
      expect(refusal(value).reason).toBe('malformed');
    }
  });

  it('refuses a missing, repeated, unknown or badly encoded parameter', () => {
    const redirect = `redirect=${encodeURIComponent('/')}`;
    const cases: [string, string][] = [
      [`token=${TOKEN}&${redirect}`, 'id'],
      [`id=${ID}&${redirect}`, 'token'],
      [`id=${ID}&token=${TOKEN}`, 'redirect'],
      [`id=${ID}&id=${ID}&token=${TOKEN}&${redirect}`, 'id'],
      [`id=${ID}&token=${TOKEN}&${redirect}&user=alice`, 'query'],
      [`id=${ID}&token=%E0%A4%A&${redirect}`, 'token'],
      [`id=${'a'.repeat(129)}&token=${TOKEN}&${redirect}`, 'id'],
      [`id=a%20b&token=${TOKEN}&${redirect}`, 'id'],
      [`id=${ID}&token=short&${redirect}`, 'token'],
      [`id=${ID}&token=${'t'.repeat(257)}&${redirect}`, 'token'],
      [`id=${ID}&token=${TOKEN}%3D&${redirect}`, 'token'],
    ];
    for (const [query, field] of cases) {
      expect(refusal(link({ query })), query.slice(0, 80)).toMatchObject({
        reason: 'malformed',
        code: 'INVALID_ARGUMENT',
        fieldPath: field,
      });
    }
  });

  it('refuses a redirect that is not a path on the web UI itself', () => {
    for (const redirect of [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      '\\/evil.example',
      '/\t/evil.example',
      '/\n/evil.example',
      ' /x',
      '/x y',
      'javascript:alert(1)',
      'evil.example',
      '',
      `/${'a'.repeat(1024)}`,
      '/\u00e9',
    ]) {
      const query = `id=${ID}&token=${TOKEN}&redirect=${encodeURIComponent(redirect)}`;
      expect(refusal(link({ query })), JSON.stringify(redirect)).toMatchObject({
        reason: 'malformed',
        fieldPath: 'redirect',
      });
    }
  });

  it('never repeats the token in a refusal', () => {
    const query = `id=${ID}&token=${TOKEN}&redirect=${encodeURIComponent('//evil')}`;
    for (const text of [link({ query }), link({ cluster: 'unknown' }), link({ path: '/x' })]) {
      expect(refusal(text).message).not.toContain(TOKEN);
    }
  });

  // Property tests: odd input never gets past the parser as anything but a DeepLinkError, and nothing it
  // accepts has a redirect that leaves the web UI's origin.
  const pieces = fc.oneof(
    fc.constantFrom(
      'keyport://',
      'example',
      '/authorize-web-session',
      '?',
      '&',
      '=',
      '#',
      'id=',
      'token=',
      'redirect=',
      '/',
      '//',
      '\\',
      '%2F',
      '%5C',
      '%09',
      '%',
      '%E0',
      ':',
      '@',
      'evil.example',
      TOKEN,
      ID,
      'https:',
      '\t',
      '\u0000',
    ),
    fc.string({ maxLength: 6 }),
    fc.string({ unit: 'grapheme', maxLength: 4 }),
  );
  const oddLinks = fc.oneof(
    fc.array(pieces, { maxLength: 24 }).map((parts) => parts.join('')),
    fc
      .array(pieces, { maxLength: 12 })
      .map(
        (parts) =>
          `keyport://example/authorize-web-session?id=${ID}&token=${TOKEN}&redirect=${parts.join('')}`,
      ),
    fc.string({ maxLength: 300 }),
  );

  it('throws nothing but a DeepLinkError on odd input (property)', () => {
    fc.assert(
      fc.property(oddLinks, (text) => {
        try {
          parseDeepLink(text, clusters);
        } catch (error) {
          expect(error).toBeInstanceOf(DeepLinkError);
          expect(error).toBeInstanceOf(KeyportError);
          expect(['INVALID_ARGUMENT', 'NOT_FOUND']).toContain((error as KeyportError).code);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('never yields a redirect that leaves the web UI (property)', () => {
    const redirects = fc.oneof(
      fc.array(pieces, { maxLength: 12 }).map((parts) => parts.join('')),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(redirects, fc.boolean(), (redirect, encode) => {
        const value = encode ? encodeURIComponent(redirect) : redirect;
        const text = `keyport://example/authorize-web-session?id=${ID}&token=${TOKEN}&redirect=${value}`;
        let parsed;
        try {
          parsed = parseDeepLink(text, clusters);
        } catch (error) {
          expect(error).toBeInstanceOf(DeepLinkError);
          return;
        }
        for (const base of ['https://web.example.com', 'https://localhost:3080']) {
          expect(new URL(parsed.redirect, base).origin).toBe(base);
        }
        expect(parsed.redirect.startsWith('/')).toBe(true);
        expect(parsed.redirect.startsWith('//')).toBe(false);
        expect(parsed.redirect).not.toMatch(/[\\\s]/);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('isSameOriginPath', () => {
  it('accepts a path with a query and refuses what a browser could take elsewhere', () => {
    expect(isSameOriginPath('/')).toBe(true);
    expect(isSameOriginPath('/web/device?x=1&y=%2F%2Fevil')).toBe(true);
    for (const redirect of ['//x', '/\\x', '/\tx', 'x', 'https://x/', '/x\u2028']) {
      expect(isSameOriginPath(redirect), JSON.stringify(redirect)).toBe(false);
    }
  });
});
