import { describe, expect, it } from 'vitest';
import { deepLinkInArgv } from './deep-links';

describe('deep links on a command line', () => {
  it('finds a keyport:// argument on a command line', () => {
    expect(deepLinkInArgv(['/opt/keyport', '--flag', 'keyport://login?user=alice'])).toBe(
      'keyport://login?user=alice',
    );
    expect(deepLinkInArgv(['/opt/keyport', 'KEYPORT://x'])).toBe('KEYPORT://x');
    expect(deepLinkInArgv(['/opt/keyport', 'https://keyport.dev', 'keyport:x'])).toBeUndefined();
  });
});
