// The udev rules shipped for FIDO security keys are well formed: every line is KEY op "VALUE" pairs with
// known keys, every GOTO has its LABEL, and FIDO devices get the seat's user access (uaccess).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../lab/cluster';

const KNOWN_KEYS =
  /^(ACTION|SUBSYSTEM|KERNEL|ATTRS\{[^}]+\}|ENV\{[^}]+\}|TAG|GOTO|LABEL|IMPORT\{program\}|MODE|GROUP)$/;

describe('native/udev/70-keyport-fido.rules', () => {
  it('is well formed and grants uaccess to FIDO HID devices', async () => {
    const text = await readFile(join(repoRoot, 'native/udev/70-keyport-fido.rules'), 'utf8');
    const rules = text.split('\n').filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
    const gotos = new Set<string>();
    const labels = new Set<string>();
    for (const rule of rules) {
      for (const pair of rule.split(/,\s*/)) {
        const match = /^([A-Za-z_]+(?:\{[^}]+\})?)(==|!=|\+=|=|:=)"([^"]*)"$/.exec(pair.trim());
        expect(match, `malformed pair: ${pair}`).not.toBeNull();
        const [, key, , value] = match as RegExpExecArray;
        expect(key).toMatch(KNOWN_KEYS);
        if (key === 'GOTO') gotos.add(value as string);
        if (key === 'LABEL') labels.add(value as string);
      }
    }
    expect([...gotos].every((target) => labels.has(target))).toBe(true);
    expect(rules.some((rule) => rule.includes('SUBSYSTEM!="hidraw"'))).toBe(true);
    expect(rules.filter((rule) => rule.includes('TAG+="uaccess"'))).toHaveLength(2);
  });
});
