import { describe, expect, it } from 'vitest';
import { desktopEntry } from './desktop-entry';

describe('desktopEntry', () => {
  it('handles keyport:// links with the command and the link as its last argument', () => {
    const entry = desktopEntry(['/usr/bin/node', '/opt/keyport/bin/keyport-connect.mjs', 'open-url']);
    const lines = entry.split('\n');
    expect(lines[0]).toBe('[Desktop Entry]');
    expect(lines).toContain('MimeType=x-scheme-handler/keyport;');
    expect(lines).toContain('Exec=/usr/bin/node /opt/keyport/bin/keyport-connect.mjs open-url %u');
  });

  it('quotes and escapes arguments as the specification asks', () => {
    const exec = desktopEntry(['env', 'KEYPORT_HOME=/home/a b/.keyport', '/x/50%/$HOME"\\`'])
      .split('\n')
      .find((line) => line.startsWith('Exec='));
    expect(exec).toBe('Exec=env "KEYPORT_HOME=/home/a b/.keyport" "/x/50%%/\\\\$HOME\\\\"\\\\\\\\\\\\`" %u');
    expect(() => desktopEntry(['a\nExec=evil'])).toThrow(/line break/);
    expect(() => desktopEntry([])).toThrow();
  });
});
