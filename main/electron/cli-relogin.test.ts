// The Electron host listens for the keyport CLI's relogin requests (client/app-relogin.ts) like the browser
// app does: the real backend on a temporary KEYPORT_HOME, the Electron double, the real socket. The request
// brings the window back from the tray with the relogin prompt; the socket closes at quit.
import { statSync } from 'node:fs';
import { connect } from 'node:net';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { askAppToRelogin, reloginSocketPath } from '../../client/app-relogin';
import { createLabClock } from '../../lab/clock';
import { listenForReloginRequests } from '../backend/relogin-socket';
import { CLI_RELOGIN_REASON } from '../backend/relogin-socket';
import {
  labHome,
  quitHosts,
  realBackend,
  savedProfile,
  startOnLabHome,
  startReadyHost,
  trustedCluster,
} from './testing/host-harness';

const electronDouble = await vi.hoisted(() => import('./testing/electron-double'));
vi.mock('electron', () => electronDouble.electronModule);

const LAB = 'lab.example:3025';

const lab = labHome('kp-relogin-', [trustedCluster(LAB, 'lab')], createLabClock);

beforeEach(async () => {
  await lab.store.saveProfile(savedProfile(LAB, 'lab', 'alice', lab.clock.now() - 60_000));
});

async function startListening() {
  const host = await startOnLabHome(lab);
  const socket = reloginSocketPath(lab.home);
  await expect.poll(() => statSync(socket, { throwIfNoEntry: false })?.isSocket()).toBe(true);
  return { ...host, socket };
}

/** One raw request line, as a CLI of another version (or anything else of this user's) might send. */
function sendRaw(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(reply));
    socket.write(line);
  });
}

describe('the relogin socket of the Electron host', () => {
  it('listens on KEYPORT_HOME/connect/relogin.sock, 0600 in a 0700 folder', async () => {
    const { socket } = await startListening();
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(reloginSocketPath(lab.home).replace(/\/relogin\.sock$/, '')).mode & 0o777).toBe(0o700);
  });

  it('the CLI’s request brings the window back from the tray with the prompt "The CLI asked…"; a cancel answers CANCELLED', async () => {
    const { window, prompts, backend } = await startListening();
    window.close();
    expect(window.isVisible()).toBe(false);

    let asked = false;
    const answer = askAppToRelogin(lab.home, LAB, { onAsked: () => (asked = true) });
    await expect.poll(() => prompts.length).toBe(1);
    expect(asked).toBe(true);
    expect(window.isVisible()).toBe(true);
    expect(prompts[0]).toMatchObject({
      kind: 'relogin',
      cluster: LAB,
      user: 'alice',
      reason: [CLI_RELOGIN_REASON],
    });

    await backend.handlers['prompts.cancel']({ id: prompts[0]?.id });
    await expect(answer).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('a malformed request is INVALID_ARGUMENT: no prompt, and the window stays in the tray', async () => {
    const { window, prompts, socket } = await startListening();
    window.close();
    for (const line of ['not json\n', '{"cluster":"lab.example:3025","extra":1}\n', '{"cluster":"a b"}\n']) {
      const reply = JSON.parse(await sendRaw(socket, line)) as { ok: boolean; code?: string };
      expect(reply, line).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    }
    expect(prompts).toEqual([]);
    expect(window.isVisible()).toBe(false);
  });

  it('closes at quit: the socket is gone and the CLI finds no app (it signs in in the terminal)', async () => {
    const { fake, socket } = await startListening();
    fake.app.quit();
    await expect.poll(() => fake.exit.quitted).toBe(true);
    expect(statSync(socket, { throwIfNoEntry: false })).toBeUndefined();
    await expect(askAppToRelogin(lab.home, LAB)).resolves.toBe(false);
  });

  it('where another app has the socket, the host warns, runs on, and leaves that socket alone', async () => {
    const other = await listenForReloginRequests(lab.home, { signInAgain: () => new Promise(() => {}) });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const { fake } = await startReadyHost({
        keyportHome: lab.home,
        backend: realBackend(lab.home, lab.clock.now),
        clock: lab.clock.now,
      });
      await expect
        .poll(() => warn.mock.calls.map((call) => String(call[0])))
        .toContainEqual(expect.stringContaining('The keyport CLI cannot ask this app to sign in again'));
      expect(fake.windows).toHaveLength(1);
      await quitHosts();
      expect(statSync(other.path).isSocket()).toBe(true);
    } finally {
      await other.close();
    }
  });
});
