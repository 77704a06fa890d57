// The Servers view of the signed-in cluster: the nodes the person's roles reach (nodes.list), with their
// labels and the logins allowed there, searchable. Only names, addresses, labels and logins cross IPC.
import { useCallback, useEffect, useId, useMemo, useState } from 'react';
import type { NodeView, ProfileView } from '../../../../preload/contract';
import { needsRelogin } from '../../services/errors';
import { useAction } from '../../services/hooks';
import { useKeyport } from '../../services/KeyportContext';
import { ErrorAlert } from '../components/ErrorAlert';
import { Progress } from '../components/Progress';
import { LoginPicker } from '../Terminals/LoginPicker';

/** The search: every word must appear in the name, the address, a `key=value` label or a login. */
export function matchesSearch(node: NodeView, search: string): boolean {
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  const text = [node.name, node.addr, ...node.labels.map((l) => `${l.key}=${l.value}`), ...node.logins]
    .join(' ')
    .toLowerCase();
  return words.every((word) => text.includes(word));
}

interface ServersProps {
  profile: ProfileView;
  onSignInAgain(): void;
  /** "Connect" with the login the person picked: a terminal tab opens. */
  onConnect(node: NodeView, login: string): void;
}

export function Servers({ profile, onSignInAgain, onConnect }: ServersProps) {
  const api = useKeyport();
  const load = useAction();
  const [nodes, setNodes] = useState<NodeView[] | null>(null);
  const [search, setSearch] = useState('');
  const [picking, setPicking] = useState<NodeView | null>(null);
  const headingId = useId();
  const searchId = useId();
  const { run } = load;

  const refresh = useCallback(async () => {
    const result = await run(() => api.nodes.list({ cluster: profile.address }));
    if (result?.ok) setNodes(result.value);
  }, [api, run, profile.address]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const shown = useMemo(() => (nodes ?? []).filter((node) => matchesSearch(node, search)), [nodes, search]);

  return (
    <section className="screen" aria-labelledby={headingId} aria-busy={load.busy || undefined}>
      <div className="section-header">
        <h2 id={headingId}>Servers on {profile.cluster}</h2>
        <button type="button" className="button" onClick={() => void refresh()} disabled={load.busy}>
          Refresh
        </button>
      </div>
      <ErrorAlert
        error={load.error}
        held={load.heldError}
        action={
          load.error && needsRelogin(load.error) ? (
            <button type="button" className="button button-primary" onClick={onSignInAgain}>
              Sign in again
            </button>
          ) : undefined
        }
      />
      {nodes === null ? (
        load.busy || !load.error ? (
          <Progress active label="Loading servers…" />
        ) : null
      ) : nodes.length === 0 ? (
        <p className="empty">Your roles give you no servers on this cluster. Ask an admin for access.</p>
      ) : (
        <div className="panel">
          <div className="field">
            <label htmlFor={searchId}>Search servers</label>
            <input
              id={searchId}
              type="search"
              value={search}
              maxLength={200}
              placeholder="name, label (env=prod) or login"
              onChange={(event) => setSearch(event.target.value)}
            />
          </div>
          <p className="muted" role="status">
            {shown.length === nodes.length
              ? `${nodes.length} ${nodes.length === 1 ? 'server' : 'servers'}`
              : `${shown.length} of ${nodes.length} servers match`}
          </p>
          {shown.length === 0 ? (
            <p className="empty">No server matches “{search.trim()}”.</p>
          ) : (
            <table className="server-table" aria-labelledby={headingId}>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Address</th>
                  <th scope="col">Labels</th>
                  <th scope="col">Logins</th>
                  <th scope="col" className="actions">
                    Connect
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.map((node) => (
                  <tr key={node.name}>
                    <th scope="row">{node.name}</th>
                    <td>{node.addr}</td>
                    <td>
                      <ul className="label-list" aria-label={`Labels of ${node.name}`}>
                        {node.labels.map((label) => (
                          <li key={label.key} className="label">
                            {label.key}={label.value}
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>{node.logins.join(', ')}</td>
                    <td className="actions">
                      <button
                        type="button"
                        className="button"
                        aria-label={`Connect to ${node.name}`}
                        disabled={node.logins.length === 0}
                        onClick={() => setPicking(node)}
                      >
                        Connect
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
      {picking && (
        <LoginPicker
          node={picking}
          onCancel={() => setPicking(null)}
          onConnect={(login) => {
            setPicking(null);
            onConnect(picking, login);
          }}
        />
      )}
    </section>
  );
}
