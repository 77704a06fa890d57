// The lab's notification server on its own private session bus, driven by the freedesktop tools a desktop
// has: libnotify's notify-send (the browser host's client) and GLib's gdbus.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLOSED_BY_CALL,
  CLOSED_DISMISSED,
  NOTIFICATIONS_BUS_NAME,
  NOTIFICATIONS_PATH,
  startLabNotifications,
} from './notifications';
import type { LabNotifications } from './notifications';

const execFileAsync = promisify(execFile);

let lab: LabNotifications;

function gdbusCall(method: string, ...args: string[]): Promise<{ stdout: string }> {
  return execFileAsync(
    'gdbus',
    [
      'call',
      '--session',
      '--dest',
      NOTIFICATIONS_BUS_NAME,
      '--object-path',
      NOTIFICATIONS_PATH,
      '--method',
      `org.freedesktop.Notifications.${method}`,
      // Arguments are GVariant text; after --, one such as -1 is not read as an option.
      '--',
      ...args,
    ],
    { env: { ...process.env, ...lab.env }, timeout: 30_000 },
  );
}

/** notify-send as the browser host runs it: waits, and prints the id and each action invoked. */
function notifySend(...args: string[]): { output: Promise<{ code: number | null; stdout: string }> } {
  const child = spawn('notify-send', args, {
    env: { ...process.env, ...lab.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  return { output: new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout }))) };
}

beforeAll(async () => {
  lab = await startLabNotifications();
}, 60_000);

afterAll(async () => {
  await lab?.stop();
});

describe('the lab notification server', () => {
  it('answers GetCapabilities with "actions" and GetServerInformation with spec 1.2', async () => {
    expect((await gdbusCall('GetCapabilities')).stdout).toContain("'actions'");
    expect((await gdbusCall('GetServerInformation')).stdout.trim()).toBe(
      "('Keyport lab notifications', 'Keyport', '1.0', '1.2')",
    );
  });

  it('records a notify-send notification, and a click invokes "default" and closes it', async () => {
    const before = lab.received.length;
    const sent = notifySend(
      '--app-name=Keyport Connect',
      '--print-id',
      '--action=default=Open',
      '--wait',
      'Hello',
      'A <b>body</b>',
    );
    const [notification] = (await lab.waitForCount(before + 1)).slice(before);
    expect(notification).toMatchObject({
      appName: 'Keyport Connect',
      summary: 'Hello',
      body: 'A <b>body</b>',
      actions: ['default', 'Open'],
      replacesId: 0,
    });
    expect(notification?.id).toBeGreaterThan(0);
    lab.click(notification?.id ?? 0);
    expect(await sent.output).toEqual({ code: 0, stdout: `${notification?.id}\ndefault\n` });
    expect(lab.received.at(-1)?.closedReason).toBe(CLOSED_DISMISSED);
  });

  it('closes a notification on CloseNotification, and answers an unknown id with an error', async () => {
    const before = lab.received.length;
    const sent = notifySend('--print-id', '--wait', 'Closed by call');
    const [notification] = (await lab.waitForCount(before + 1)).slice(before);
    const id = notification?.id ?? 0;
    await gdbusCall('CloseNotification', String(id));
    expect(await sent.output).toEqual({ code: 0, stdout: `${id}\n` });
    expect(lab.received.at(-1)?.closedReason).toBe(CLOSED_BY_CALL);
    const count = lab.received.length;
    // Spec: "If the notification no longer exists, an empty D-BUS Error message is sent back."
    await expect(gdbusCall('CloseNotification', String(id))).rejects.toThrow(
      /Notifications\.Error\.NotFound/,
    );
    await expect(gdbusCall('CloseNotification', '4000000000')).rejects.toThrow(/NotFound/);
    // A click on a closed or unknown notification, or an action it does not offer, is a test's mistake.
    expect(() => lab.click(id)).toThrow(/no open notification/);
    expect(lab.received.length).toBe(count);
  });

  it('refuses a Notify whose arguments break the spec, and records nothing', async () => {
    const count = lab.received.length;
    // The wrong signature (no hints, no timeout): dbus-send does not introspect, so the server refuses it.
    await expect(
      execFileAsync(
        'dbus-send',
        [
          `--bus=${lab.busAddress}`,
          '--print-reply',
          `--dest=${NOTIFICATIONS_BUS_NAME}`,
          NOTIFICATIONS_PATH,
          'org.freedesktop.Notifications.Notify',
          'string:app',
          'uint32:0',
          'string:',
          'string:summary',
        ],
        { timeout: 30_000 },
      ),
    ).rejects.toThrow(/InvalidArgs: expected arguments of type \(susssasa\{sv\}i\)/);
    // Actions come in pairs (key, label); an odd list is refused.
    await expect(
      gdbusCall('Notify', 'app', '0', "''", 'summary', 'body', "['default']", '{}', '-1'),
    ).rejects.toThrow(/actions are pairs/);
    expect(lab.received.length).toBe(count);
  });

  it('keeps the id of a notification it replaces', async () => {
    const { stdout } = await gdbusCall(
      'Notify',
      'app',
      '0',
      "''",
      'first',
      "''",
      "['default', 'Open']",
      '{}',
      '-1',
    );
    const id = Number(/\(uint32 (\d+),\)/.exec(stdout)?.[1]);
    const again = await gdbusCall('Notify', 'app', String(id), "''", 'second', "''", '[]', '{}', '-1');
    expect(again.stdout.trim()).toBe(`(uint32 ${id},)`);
    expect(lab.received.filter((n) => n.id === id).map((n) => n.summary)).toEqual(['second']);
    expect(() => lab.click(id)).toThrow(/offers no "default" action/);
  });

  it('stop() ends the bus and removes its socket', async () => {
    const other = await startLabNotifications();
    const path = /unix:path=([^,]+)/.exec(other.busAddress)?.[1] ?? '';
    expect(existsSync(path)).toBe(true);
    await other.stop();
    await other.stop();
    expect(existsSync(path)).toBe(false);
  });
});
