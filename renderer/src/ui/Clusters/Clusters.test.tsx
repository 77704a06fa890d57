// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { ClusterView, Result } from '../../../../preload/contract';
import { cluster, deferred, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import type { FakeState } from '../../testing/fakeKeyport';
import { App } from '../App';

async function openClusters(state: FakeState) {
  const fake = fakeKeyport(state);
  const user = userEvent.setup();
  render(<App api={fake.api} />);
  await user.click(await screen.findByRole('button', { name: 'Clusters' }));
  await screen.findByRole('heading', { level: 2, name: 'Clusters' });
  return { fake, user };
}

describe('Clusters screen', () => {
  it('opens on the clusters when there are none, with a hint to add one', async () => {
    const fake = fakeKeyport();
    render(<App api={fake.api} />);
    expect(await screen.findByRole('heading', { level: 2, name: 'Clusters' })).toBeInTheDocument();
    expect(screen.getByText('No clusters yet. Add one by its address.')).toBeInTheDocument();
    expect(screen.queryByRole('list', { name: 'Trusted clusters' })).not.toBeInTheDocument();
  });

  it('lists each trusted cluster with its name, address and CA pin', async () => {
    const caPin = `sha256:${'12'.repeat(32)}`;
    await openClusters({
      clusters: [
        cluster({ name: 'prod', address: 'prod.example.com:3025', caPin }),
        cluster({ name: 'lab', address: '127.0.0.1:3025' }),
      ],
    });
    const list = screen.getByRole('list', { name: 'Trusted clusters' });
    const items = within(list).getAllByRole('listitem');
    expect(items).toHaveLength(2);
    expect(within(items[0]!).getByText('prod')).toBeInTheDocument();
    expect(within(items[0]!).getByText('prod.example.com:3025')).toBeInTheDocument();
    expect(within(items[0]!).getByText(caPin)).toBeInTheDocument();
    expect(within(items[0]!).getByRole('button', { name: 'Sign in to prod' })).toBeInTheDocument();
    expect(within(items[1]!).getByRole('button', { name: 'Remove lab' })).toBeInTheDocument();
  });

  it('offers the signed-in cluster its account, not a second sign-in', async () => {
    const prod = cluster({ name: 'prod', address: 'prod.example.com:3025' });
    const { user } = await openClusters({
      clusters: [prod, cluster({ name: 'lab', address: '127.0.0.1:3025' })],
      profile: profile({ address: prod.address, cluster: 'prod' }),
    });
    const items = within(screen.getByRole('list', { name: 'Trusted clusters' })).getAllByRole('listitem');
    expect(within(items[0]!).queryByRole('button', { name: 'Sign in to prod' })).not.toBeInTheDocument();
    expect(within(items[1]!).getByRole('button', { name: 'Sign in to lab' })).toBeInTheDocument();
    await user.click(within(items[0]!).getByRole('button', { name: 'Open account on prod' }));
    expect(await screen.findByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
  });

  it('adds a cluster after the person trusts its CA pin', async () => {
    const state: FakeState = { clusters: [] };
    const { fake, user } = await openClusters(state);
    const added = cluster({ name: 'prod', address: 'prod.example.com:3025' });
    const reply = deferred<Result<ClusterView>>();
    fake.respond('clusters.add', () => reply.promise);

    const form = screen.getByRole('form', { name: 'Add a cluster' });
    await user.type(
      within(form).getByRole('textbox', { name: 'Cluster address' }),
      ' prod.example.com:3025 ',
    );
    await user.click(within(form).getByRole('button', { name: 'Add cluster' }));
    expect(fake.callsTo('clusters.add')).toEqual([{ address: 'prod.example.com:3025' }]);

    act(() =>
      fake.emit('onPrompt', { id: 'p1', kind: 'trustCaPin', address: added.address, caPin: added.caPin }),
    );
    const dialog = screen.getByRole('dialog', { name: 'Trust this cluster?' });
    await user.click(within(dialog).getByRole('button', { name: 'Trust' }));
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'trustCaPin', trust: true } },
    ]);

    state.clusters = [added];
    await act(async () => reply.resolve(ok(added)));
    expect(await screen.findByText('Cluster "prod" added.')).toBeInTheDocument();
    expect(
      within(screen.getByRole('list', { name: 'Trusted clusters' })).getByText('prod.example.com:3025'),
    ).toBeInTheDocument();
    expect(within(form).getByRole('textbox', { name: 'Cluster address' })).toHaveValue('');
  });

  it('sends a pasted CA pin with the address', async () => {
    const { fake, user } = await openClusters({ clusters: [] });
    fake.respond('clusters.add', ok(cluster()));
    const caPin = `sha256:${'ef'.repeat(32)}`;
    await user.type(screen.getByRole('textbox', { name: 'Cluster address' }), 'auth.example.com:3025');
    await user.type(screen.getByRole('textbox', { name: 'CA pin (optional)' }), caPin);
    await user.click(screen.getByRole('button', { name: 'Add cluster' }));
    expect(fake.callsTo('clusters.add')).toEqual([{ address: 'auth.example.com:3025', caPin }]);
  });

  it('adds nothing when the person does not trust the CA pin', async () => {
    const { fake, user } = await openClusters({ clusters: [] });
    const reply = deferred<Result<ClusterView>>();
    fake.respond('clusters.add', () => reply.promise);
    await user.type(screen.getByRole('textbox', { name: 'Cluster address' }), 'evil.example.com:3025');
    await user.click(screen.getByRole('button', { name: 'Add cluster' }));
    act(() =>
      fake.emit('onPrompt', {
        id: 'p1',
        kind: 'trustCaPin',
        address: 'evil.example.com:3025',
        caPin: 'sha256:00',
      }),
    );
    await user.click(screen.getByRole('button', { name: "Don't trust" }));
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'trustCaPin', trust: false } },
    ]);
    await act(async () =>
      reply.resolve(fail('CANCELLED', 'The cluster CA was not trusted; nothing was saved.')),
    );
    expect(screen.getByRole('alert')).toHaveTextContent('Cancelled. Nothing was changed.');
    expect(screen.getByText('No clusters yet. Add one by its address.')).toBeInTheDocument();
  });

  it('explains an unreachable cluster, and asks for an address before calling', async () => {
    const { fake, user } = await openClusters({ clusters: [] });
    await user.click(screen.getByRole('button', { name: 'Add cluster' }));
    expect(screen.getByRole('alert')).toHaveTextContent('Cluster address: Give the cluster address');
    expect(screen.getByRole('textbox', { name: 'Cluster address' })).toHaveFocus();
    expect(fake.callsTo('clusters.add')).toEqual([]);

    fake.respond('clusters.add', fail('UNAVAILABLE', 'connect ECONNREFUSED'));
    await user.type(screen.getByRole('textbox', { name: 'Cluster address' }), 'down.example.com:3025{Enter}');
    expect(
      await screen.findByText(/Cannot reach the cluster\. Check the cluster address/),
    ).toBeInTheDocument();
  });

  it('removes a cluster only after confirmation', async () => {
    const state: FakeState = { clusters: [cluster({ name: 'prod' })] };
    const { fake, user } = await openClusters(state);
    fake.respond('clusters.remove', () => {
      state.clusters = [];
      return ok(null);
    });

    await user.click(screen.getByRole('button', { name: 'Remove prod' }));
    let dialog = screen.getByRole('dialog', { name: 'Remove cluster prod?' });
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Remove prod' })).toHaveFocus();
    expect(fake.callsTo('clusters.remove')).toEqual([]);

    await user.click(screen.getByRole('button', { name: 'Remove prod' }));
    dialog = screen.getByRole('dialog', { name: 'Remove cluster prod?' });
    await user.click(within(dialog).getByRole('button', { name: 'Remove' }));
    expect(fake.callsTo('clusters.remove')).toEqual([{ address: 'auth.example.com:3025' }]);
    expect(await screen.findByText('No clusters yet. Add one by its address.')).toBeInTheDocument();
    expect(screen.getByText('Cluster "prod" removed.')).toBeInTheDocument();
  });

  it('opens the login of a cluster from its Sign in button', async () => {
    const { user } = await openClusters({ clusters: [cluster({ name: 'prod' })] });
    await user.click(screen.getByRole('button', { name: 'Sign in to prod' }));
    expect(screen.getByRole('heading', { level: 2, name: 'Sign in to prod' })).toBeInTheDocument();
  });
});
