// notifySendNotifier with stand-in executables (shell scripts, as chromium.test.ts does for Chromium): what
// it runs, what it makes of notify-send's output and exit, and that it ends what it started. The real
// notify-send against a real notification server on the lab's session bus is in lab/notifications.test.ts
// and test/browser-host-notifications.test.ts.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeBody, notifySendArguments, notifySendNotifier } from './desktop-notifications';

const NOTICE = {
  summary: 'Keyport session ends soon',
  body: 'On <b>lab</b> & co',
  actionLabel: 'Sign in again',
};
const BUS = { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' };

let dir: string;

async function standIn(name: string, script: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kp-notify-send-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('notifySendArguments', () => {
  it('offers the default action, waits, prints the id, and puts the text after --', () => {
    expect(notifySendArguments(NOTICE)).toEqual([
      '--app-name=Keyport Connect',
      '--urgency=normal',
      '--action=default=Sign in again',
      '--print-id',
      '--wait',
      '--',
      'Keyport session ends soon',
      'On &lt;b&gt;lab&lt;/b&gt; &amp; co',
    ]);
    expect(notifySendArguments({ ...NOTICE, summary: '--help', urgency: 'critical' })).toContain('--help');
    expect(notifySendArguments({ ...NOTICE, urgency: 'critical' })[1]).toBe('--urgency=critical');
  });

  it('escapes body markup and cuts long text', () => {
    expect(escapeBody('<a href="x">&</a>')).toBe('&lt;a href="x"&gt;&amp;&lt;/a&gt;');
    const [summary] = notifySendArguments({ ...NOTICE, summary: 'x'.repeat(1000) }).slice(-2);
    expect(summary).toHaveLength(240);
  });
});

describe('notifySendNotifier', () => {
  it('without a session bus says so once and runs nothing', async () => {
    const marker = join(dir, 'ran-without-bus');
    const command = await standIn('no-bus', `touch ${marker}`);
    const lines: string[] = [];
    const notifier = notifySendNotifier({ env: {}, command, log: (line) => lines.push(line) });
    notifier.show(NOTICE, () => {});
    notifier.show(NOTICE, () => {});
    expect(lines).toEqual([
      'Desktop notifications are off: no session bus (DBUS_SESSION_BUS_ADDRESS is not set).',
    ]);
    expect(notifier.waiting).toBe(0);
    await notifier.close();
    expect(existsSync(marker)).toBe(false);
  });

  it('without notify-send says so once and stops trying', async () => {
    const lines: string[] = [];
    const notifier = notifySendNotifier({
      env: BUS,
      command: join(dir, 'missing'),
      log: (l) => lines.push(l),
    });
    notifier.show(NOTICE, () => {});
    await until(() => lines.length === 1 && notifier.waiting === 0);
    notifier.show(NOTICE, () => {});
    expect(notifier.waiting).toBe(0);
    expect(lines).toEqual([
      `Desktop notifications are off: ${join(dir, 'missing')} is not installed (Debian: libnotify-bin).`,
    ]);
  });

  it('runs onClick once for the default action, and passes the text and the bus on', async () => {
    const argsFile = join(dir, 'args');
    const command = await standIn(
      'clicked',
      `printf '%s\\n' "$DBUS_SESSION_BUS_ADDRESS" "$@" > ${argsFile}; printf '7\\nother\\ndefault\\ndefault\\n'`,
    );
    let clicks = 0;
    const notifier = notifySendNotifier({ env: BUS, command });
    notifier.show(NOTICE, () => (clicks += 1));
    expect(notifier.waiting).toBe(1);
    await until(() => notifier.waiting === 0);
    expect(clicks).toBe(1);
    expect((await readFile(argsFile, 'utf8')).split('\n').slice(0, -1)).toEqual([
      BUS.DBUS_SESSION_BUS_ADDRESS,
      ...notifySendArguments(NOTICE),
    ]);
  });

  it('says a failure (no notification server) once, without a click', async () => {
    const command = await standIn(
      'refused',
      "echo 'GDBus.Error:org.freedesktop.DBus.Error.ServiceUnknown: nobody' >&2; exit 1",
    );
    const lines: string[] = [];
    let clicks = 0;
    const notifier = notifySendNotifier({ env: BUS, command, log: (line) => lines.push(line) });
    notifier.show(NOTICE, () => (clicks += 1));
    notifier.show(NOTICE, () => (clicks += 1));
    await until(() => notifier.waiting === 0);
    expect(lines).toEqual([
      'A desktop notification failed: GDBus.Error:org.freedesktop.DBus.Error.ServiceUnknown: nobody',
    ]);
    expect(clicks).toBe(0);
  });

  it('close() ends the waiting notifications by PID and shows nothing more', async () => {
    const command = await standIn('waits', 'echo 3; exec sleep 600');
    const notifier = notifySendNotifier({ env: BUS, command });
    notifier.show(NOTICE, () => {});
    notifier.show(NOTICE, () => {});
    expect(notifier.waiting).toBe(2);
    await notifier.close();
    expect(notifier.waiting).toBe(0);
    notifier.show(NOTICE, () => {});
    expect(notifier.waiting).toBe(0);
  });
});
