// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import axe from 'axe-core';
import { describe, expect, it, vi } from 'vitest';
import type { NodeView } from '../../../../preload/contract';
import { cluster, deferred, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import type { FakeState } from '../../testing/fakeKeyport';
import { App } from '../App';
import { matchesSearch } from './Servers';

/** axe-core's serious and critical findings. jsdom has no layout, so contrast is checked in the e2e tests. */
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
    name: 'api-dev',
    addr: '127.0.0.1:2202',
    labels: [{ key: 'env', value: 'dev' }],
    logins: ['deploy', 'jerry'],
  },
  {
    name: 'web-dev',
    addr: '127.0.0.1:2201',
    labels: [
      { key: 'env', value: 'dev' },
      { key: 'team', value: 'web' },
    ],
    logins: ['jerry'],
  },
  { name: 'web-prod', addr: '127.0.0.1:2203', labels: [{ key: 'env', value: 'prod' }], logins: ['viewer'] },
];

async function openServers(state: FakeState = {}) {
  state.clusters ??= [cluster()];
  if (!('profile' in state)) state.profile = profile();
  const fake = fakeKeyport(state);
  const user = userEvent.setup();
  render(<App api={fake.api} />);
  await user.click(await screen.findByRole('button', { name: 'Servers' }));
  return { fake, user };
}

const rowNames = () =>
  within(screen.getByRole('table'))
    .getAllByRole('rowheader')
    .map((cell) => cell.textContent);

describe('Servers view', () => {
  it('lists the reachable servers of the signed-in cluster with their labels and logins', async () => {
    const { fake } = await openServers({ nodes });
    expect(await screen.findByRole('heading', { name: 'Servers on example' })).toBeInTheDocument();
    await screen.findByRole('table');
    expect(fake.callsTo('nodes.list')).toEqual([{ cluster: 'auth.example.com:3025' }]);
    expect(rowNames()).toEqual(['api-dev', 'web-dev', 'web-prod']);
    const webDev = screen.getByRole('row', { name: /web-dev/ });
    expect(within(webDev).getByRole('list', { name: 'Labels of web-dev' })).toHaveTextContent(
      'env=devteam=web',
    );
    expect(
      within(webDev)
        .getAllByRole('listitem')
        .map((item) => item.textContent),
    ).toEqual(['env=dev', 'team=web']);
    expect(within(webDev).getByText('127.0.0.1:2201')).toBeInTheDocument();
    expect(
      within(screen.getByRole('row', { name: /api-dev/ })).getByText('deploy, jerry'),
    ).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('3 servers');
    expect(screen.getByRole('button', { name: 'Servers' })).toHaveAttribute('aria-current', 'page');
    expect(await seriousViolations()).toEqual([]);
  });

  it('searches by name, label and login; every word must match', async () => {
    const { user } = await openServers({ nodes });
    const search = await screen.findByRole('searchbox', { name: 'Search servers' });
    await user.type(search, 'env=dev');
    expect(rowNames()).toEqual(['api-dev', 'web-dev']);
    expect(screen.getByRole('status')).toHaveTextContent('2 of 3 servers match');
    await user.clear(search);
    await user.type(search, 'WEB viewer');
    expect(rowNames()).toEqual(['web-prod']);
    await user.clear(search);
    await user.type(search, 'staging');
    expect(screen.queryByRole('table')).not.toBeInTheDocument();
    expect(screen.getByText('No server matches “staging”.')).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('0 of 3 servers match');
    expect(await seriousViolations()).toEqual([]);
  });

  it('says so when the roles reach no server', async () => {
    await openServers({ nodes: [] });
    expect(
      await screen.findByText('Your roles give you no servers on this cluster. Ask an admin for access.'),
    ).toBeInTheDocument();
    expect(screen.queryByRole('searchbox')).not.toBeInTheDocument();
  });

  it('shows progress while loading, then an error with a way out; Refresh asks again', async () => {
    const fake = fakeKeyport({ clusters: [cluster()], profile: profile() });
    const pending = deferred<ReturnType<typeof fail>>();
    fake.respond('nodes.list', () => pending.promise);
    const user = userEvent.setup();
    render(<App api={fake.api} />);
    await user.click(await screen.findByRole('button', { name: 'Servers' }));
    expect(screen.getByRole('region', { name: 'Servers on example' })).toHaveAttribute('aria-busy', 'true');
    await act(async () =>
      pending.resolve(
        fail('CERTIFICATE_EXPIRED', 'Your session on auth.example.com:3025 has expired.', {
          resolvableByRelogin: true,
        }),
      ),
    );
    const alert = await screen.findByRole('alert');
    expect(within(alert).getByRole('button', { name: 'Sign in again' })).toBeInTheDocument();
    fake.respond('nodes.list', ok(nodes));
    await user.click(screen.getByRole('button', { name: 'Refresh' }));
    await screen.findByRole('table');
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(fake.callsTo('nodes.list')).toHaveLength(2);
    await user.click(screen.getByRole('button', { name: 'Refresh' }));
    expect(fake.callsTo('nodes.list')).toHaveLength(3);
  });

  it('is offered only when signed in', async () => {
    const fake = fakeKeyport({ clusters: [cluster()], profile: null });
    render(<App api={fake.api} />);
    await screen.findByRole('textbox', { name: 'User' });
    expect(screen.queryByRole('button', { name: 'Servers' })).not.toBeInTheDocument();
    expect(fake.callsTo('nodes.list')).toHaveLength(0);
  });
});

describe('matchesSearch', () => {
  const node = nodes[1]!;
  it.each([
    ['', true],
    ['web', true],
    ['TEAM=web', true],
    ['2201', true],
    ['jerry dev', true],
    ['prod', false],
    ['web prod', false],
  ])('"%s" → %s', (search, expected) => {
    expect(matchesSearch(node, search)).toBe(expected);
  });
});
