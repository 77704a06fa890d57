// @vitest-environment jsdom
// "Connect" on a server: the login picker, then terminal tabs (xterm.js) fed by onTerminalData, each saying
// how its session stands and why it ended, with what to do next. Keystrokes and sizes leave through the
// contract; the real backend and ssh are main/backend/terminals.test.ts and the Chromium e2e test.
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import axe from 'axe-core';
import { describe, expect, it, vi } from 'vitest';
import type { NodeView } from '../../../../preload/contract';
import { cluster, deferred, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import { App } from '../App';

// What jsdom lacks and xterm.js asks for (Chromium has both; the e2e test runs the real thing).
window.matchMedia ??= (query: string) =>
  ({
    matches: false,
    media: query,
    onchange: null,
    addEventListener: () => {},
    removeEventListener: () => {},
    addListener: () => {},
    removeListener: () => {},
    dispatchEvent: () => false,
  }) as MediaQueryList;
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
};
vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);

async function seriousViolations() {
  document.documentElement.lang = 'en';
  document.title = 'Keyport Connect';
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);
  const results = await axe.run(document, { rules: { 'color-contrast': { enabled: false } } });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

const nodes: NodeView[] = [
  {
    name: 'node-1',
    addr: '10.0.0.5:22',
    labels: [{ key: 'env', value: 'prod' }],
    logins: ['dana', 'deploy'],
  },
  { name: 'node-2', addr: '10.0.0.6:22', labels: [], logins: ['dana'] },
];

async function openServers() {
  const fake = fakeKeyport({ clusters: [cluster()], profile: profile(), nodes });
  const user = userEvent.setup();
  render(<App api={fake.api} />);
  await user.click(await screen.findByRole('button', { name: 'Servers' }));
  await screen.findByRole('table');
  return { fake, user };
}

describe('Connect and the terminal tabs', () => {
  it('asks for the login among those the roles allow, then opens a tab', async () => {
    const { fake, user } = await openServers();
    const opened =
      deferred<ReturnType<typeof ok<{ id: string; cluster: string; node: string; login: string }>>>();
    fake.respond('terminals.open', () => opened.promise);
    await user.click(screen.getByRole('button', { name: 'Connect to node-1' }));
    const dialog = screen.getByRole('dialog', { name: 'Connect to node-1' });
    const group = within(dialog).getByRole('group', { name: 'Log in as' });
    expect(
      within(group)
        .getAllByRole('radio')
        .map((r) => (r as HTMLInputElement).value),
    ).toEqual(['dana', 'deploy']);
    expect(within(group).getByRole('radio', { name: 'dana' })).toBeChecked();
    expect(await seriousViolations()).toEqual([]);
    await user.click(within(group).getByRole('radio', { name: 'deploy' }));
    await user.click(within(dialog).getByRole('button', { name: 'Connect' }));
    expect(fake.callsTo('terminals.open')).toEqual([
      { cluster: 'auth.example.com:3025', node: 'node-1', login: 'deploy', cols: 80, rows: 24 },
    ]);
    // The tab shows at once, connecting (the touch prompt, where it applies, shows meanwhile).
    const tab = await screen.findByRole('tab', { name: 'deploy@node-1' });
    expect(tab).toHaveAttribute('aria-selected', 'true');
    expect(screen.getByText('Connecting to deploy@node-1…')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Terminals (1)' })).toHaveAttribute('aria-current', 'page');

    // Bytes that come before the answer are kept for the tab.
    act(() => fake.emit('onTerminalData', { id: 't-1', data: 'early bytes ' }));
    await act(async () =>
      opened.resolve(ok({ id: 't-1', cluster: 'auth.example.com:3025', node: 'node-1', login: 'deploy' })),
    );
    expect(await screen.findByText('Connected to deploy@node-1.')).toBeInTheDocument();
    // The terminal's real size follows the fit.
    expect(fake.callsTo('terminals.resize')).toEqual([
      { id: 't-1', cols: expect.any(Number), rows: expect.any(Number) },
    ]);
    expect(await seriousViolations()).toEqual([]);

    act(() =>
      fake.emit('onTerminalEnded', {
        id: 't-1',
        reason: 'exited',
        exitCode: 0,
        message: 'The session on node-1 ended.',
      }),
    );
    expect(screen.getByRole('tab', { name: 'deploy@node-1 (ended)' })).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('The session on node-1 ended.');
    await user.click(screen.getByRole('button', { name: 'Close tab' }));
    expect(screen.queryByRole('tab')).not.toBeInTheDocument();
    // An ended session is not closed again.
    expect(fake.callsTo('terminals.close')).toEqual([]);
    expect(screen.getByText('No terminal is open. Connect to a server from Servers.')).toBeInTheDocument();
  });

  it('keeps several tabs; each says why it ended, and what to do next', async () => {
    const { fake, user } = await openServers();
    let n = 0;
    fake.respond('terminals.open', (request) =>
      ok({ id: `t-${++n}`, cluster: 'auth.example.com:3025', node: request.node, login: request.login }),
    );
    const connect = async (node: string) => {
      await user.click(screen.getByRole('button', { name: 'Servers' }));
      await user.click(await screen.findByRole('button', { name: `Connect to ${node}` }));
      await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Connect' }));
      await screen.findByText(`Connected to dana@${node}.`);
    };
    await connect('node-1');
    await connect('node-2');
    expect(screen.getAllByRole('tab').map((t) => t.textContent)).toEqual(['dana@node-1', 'dana@node-2']);
    act(() =>
      fake.emit('onTerminalEnded', {
        id: 't-1',
        reason: 'hostNotTrusted',
        exitCode: 255,
        message: "node-1 (10.0.0.5:22) did not show a host certificate from example's host CA.",
      }),
    );
    // The second tab is on show; the first says (ended) in its name.
    expect(screen.getAllByRole('tab').map((t) => t.textContent)).toEqual([
      'dana@node-1 (ended)',
      'dana@node-2',
    ]);
    // Arrow keys move between tabs (APG Tabs).
    screen.getByRole('tab', { name: 'dana@node-2' }).focus();
    await user.keyboard('{ArrowLeft}');
    expect(screen.getByRole('tab', { name: 'dana@node-1 (ended)' })).toHaveAttribute('aria-selected', 'true');
    expect(screen.getByRole('alert')).toHaveTextContent(/did not show a host certificate/);
    expect(await seriousViolations()).toEqual([]);
    // Disconnect closes the live session.
    await user.click(screen.getByRole('tab', { name: 'dana@node-2' }));
    const panel = screen.getByRole('tabpanel', { name: 'dana@node-2' });
    await user.click(within(panel).getByRole('button', { name: 'Disconnect' }));
    expect(fake.callsTo('terminals.close')).toEqual([{ id: 't-2' }]);
  });

  it('a tab closed while its session opens closes that session once it is open', async () => {
    const { fake, user } = await openServers();
    const opened =
      deferred<ReturnType<typeof ok<{ id: string; cluster: string; node: string; login: string }>>>();
    fake.respond('terminals.open', () => opened.promise);
    await user.click(screen.getByRole('button', { name: 'Connect to node-2' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Connect' }));
    await user.click(within(await screen.findByRole('tabpanel')).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('tab')).not.toBeInTheDocument();
    await act(async () =>
      opened.resolve(ok({ id: 't-9', cluster: 'auth.example.com:3025', node: 'node-2', login: 'dana' })),
    );
    expect(fake.callsTo('terminals.close')).toEqual([{ id: 't-9' }]);
    expect(screen.queryByRole('tab')).not.toBeInTheDocument();
  });

  it.each([
    ['ACCESS_DENIED', /You may not log in to node-1 as "dana". Pick a login your roles allow there/],
    ['DEVICE_TRUST_REQUIRED', /node-1 needs a trusted device. Enroll this device \(Account → This device\)/],
    ['CANCELLED', /Cancelled: no session was opened./],
  ] as const)('a ceremony refused with %s says what to do next', async (code, text) => {
    const { fake, user } = await openServers();
    fake.respond('terminals.open', fail(code, 'refused'));
    await user.click(screen.getByRole('button', { name: 'Connect to node-1' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Connect' }));
    const said = await screen.findByText(text);
    expect(said).toHaveAttribute('role', code === 'CANCELLED' ? 'status' : 'alert');
    expect(screen.getByRole('tab', { name: 'dana@node-1 (ended)' })).toBeInTheDocument();
  });
});
