import { describe, expect, it, vi } from 'vitest';
import { deepLinkInArgv, ignoreDeepLink } from './deep-links';

describe('deep links', () => {
  it('finds a keyport:// argument on a command line', () => {
    expect(deepLinkInArgv(['/opt/keyport', '--flag', 'keyport://login?user=alice'])).toBe(
      'keyport://login?user=alice',
    );
    expect(deepLinkInArgv(['/opt/keyport', 'KEYPORT://x'])).toBe('KEYPORT://x');
    expect(deepLinkInArgv(['/opt/keyport', 'https://keyport.dev', 'keyport:x'])).toBeUndefined();
  });

  it('ignores a link without ever logging its text', () => {
    const log = vi.fn();
    ignoreDeepLink('keyport://approve?token=secret-token', log);
    ignoreDeepLink(undefined, log);
    expect(log).toHaveBeenCalledTimes(1);
    expect(String(log.mock.calls[0]?.[0])).not.toContain('secret-token');
  });
});
