import { useId, useRef, useState } from 'react';
import type { FormEvent } from 'react';
import type { ClusterView } from '../../../../preload/contract';
import { fieldProblem } from '../../services/errors';
import { useAction } from '../../services/hooks';
import { useKeyport } from '../../services/KeyportContext';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { ErrorAlert } from '../components/ErrorAlert';
import { recoverFocus } from '../components/focus';
import { Progress } from '../components/Progress';

interface ClustersProps {
  clusters: ClusterView[];
  /** The address of the cluster with a session, if any. */
  signedInAddress: string | null;
  onSignIn(address: string): void;
  /** The signed-in cluster's button opens the account instead of a second sign-in. */
  onOpenAccount(): void;
  refreshClusters(): Promise<unknown>;
}

export function Clusters({
  clusters,
  signedInAddress,
  onSignIn,
  onOpenAccount,
  refreshClusters,
}: ClustersProps) {
  const [status, setStatus] = useState('');
  const remove = useAction();
  const [confirming, setConfirming] = useState<ClusterView | null>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const api = useKeyport();

  async function removeCluster(cluster: ClusterView) {
    setConfirming(null);
    setStatus('');
    const result = await remove.run(() => api.clusters.remove({ address: cluster.address }));
    if (!result?.ok) return recoverFocus(headingRef.current);
    await refreshClusters();
    setStatus(`Cluster "${cluster.name}" removed.`);
    // The row and its button are gone: the heading keeps keyboard focus in the list's section.
    headingRef.current?.focus();
  }

  return (
    <section className="screen" aria-labelledby="clusters-heading">
      <h2 id="clusters-heading">Clusters</h2>
      <AddCluster
        onAdded={async (cluster) => {
          await refreshClusters();
          setStatus(`Cluster "${cluster.name}" added.`);
        }}
        onStart={() => setStatus('')}
      />
      <div className="section-header">
        <h3 ref={headingRef} tabIndex={-1}>
          Trusted clusters
        </h3>
        <Progress active={remove.busy} label="Removing cluster…" />
        <p className="status" role="status">
          {status}
        </p>
      </div>
      <ErrorAlert error={remove.error} held={remove.heldError} />
      {clusters.length === 0 ? (
        <p className="empty">No clusters yet. Add one by its address.</p>
      ) : (
        <ul className="card-list" aria-label="Trusted clusters" aria-busy={remove.busy || undefined}>
          {clusters.map((cluster) => (
            <li key={cluster.address} className="card cluster">
              <div className="cluster-text">
                <p className="cluster-name">
                  {cluster.name}
                  {cluster.address === signedInAddress && <span className="badge">Signed in</span>}
                </p>
                <p className="cluster-address">{cluster.address}</p>
                <p className="cluster-pin">
                  <span className="muted">CA pin </span>
                  <code className="pin">{cluster.caPin}</code>
                </p>
              </div>
              <div className="card-actions">
                {cluster.address === signedInAddress ? (
                  <button
                    type="button"
                    className="button button-primary"
                    aria-label={`Open account on ${cluster.name}`}
                    onClick={onOpenAccount}
                  >
                    Open account
                  </button>
                ) : (
                  <button
                    type="button"
                    className="button button-primary"
                    aria-label={`Sign in to ${cluster.name}`}
                    onClick={() => onSignIn(cluster.address)}
                  >
                    Sign in
                  </button>
                )}
                <button
                  type="button"
                  className="button"
                  aria-label={`Remove ${cluster.name}`}
                  disabled={remove.busy}
                  onClick={() => setConfirming(cluster)}
                >
                  Remove
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}

      {confirming && (
        <ConfirmDialog
          title={`Remove cluster ${confirming.name}?`}
          confirmLabel="Remove"
          onConfirm={() => void removeCluster(confirming)}
          onCancel={() => setConfirming(null)}
        >
          <p className="dialog-message">
            Keyport Connect forgets {confirming.address} and its CA pin, and signs you out of it. You can add
            it again later.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

interface AddClusterProps {
  onAdded(cluster: ClusterView): Promise<void>;
  onStart(): void;
}

function AddCluster({ onAdded, onStart }: AddClusterProps) {
  const api = useKeyport();
  const add = useAction();
  const [address, setAddress] = useState('');
  const [caPin, setCaPin] = useState('');
  const addressRef = useRef<HTMLInputElement>(null);
  const addressId = useId();
  const pinId = useId();
  const pinHintId = useId();

  async function submit(event: FormEvent) {
    event.preventDefault();
    onStart();
    const trimmedAddress = address.trim();
    const trimmedPin = caPin.trim();
    if (!trimmedAddress) {
      add.setError(fieldProblem('address', 'Give the cluster address (HOST:PORT).'));
      addressRef.current?.focus();
      return;
    }
    const result = await add.run(() =>
      api.clusters.add(
        trimmedPin ? { address: trimmedAddress, caPin: trimmedPin } : { address: trimmedAddress },
      ),
    );
    recoverFocus(addressRef.current);
    if (!result?.ok) return;
    setAddress('');
    setCaPin('');
    await onAdded(result.value);
  }

  return (
    <form
      className="panel form"
      aria-label="Add a cluster"
      aria-busy={add.busy || undefined}
      onSubmit={submit}
      noValidate
    >
      <div className="field">
        <label htmlFor={addressId}>Cluster address</label>
        <input
          id={addressId}
          ref={addressRef}
          type="text"
          placeholder="auth.example.com:3025"
          autoComplete="off"
          spellCheck={false}
          value={address}
          onChange={(event) => setAddress(event.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor={pinId}>CA pin (optional)</label>
        <input
          id={pinId}
          type="text"
          autoComplete="off"
          spellCheck={false}
          aria-describedby={pinHintId}
          value={caPin}
          onChange={(event) => setCaPin(event.target.value)}
        />
        <p id={pinHintId} className="hint">
          Paste the pin your administrator gave you (sha256:…). Without one, you are asked to compare it.
        </p>
      </div>
      <ErrorAlert error={add.error} held={add.heldError} />
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={add.busy}>
          Add cluster
        </button>
        <Progress active={add.busy} label="Adding cluster…" />
      </div>
    </form>
  );
}
