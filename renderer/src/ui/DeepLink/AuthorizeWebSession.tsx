// The screen a keyport:// link fills in. The link never acts by itself: this screen says what a browser
// asks and for which cluster, and the person decides. The token stays in the backend; this screen knows
// the cluster and the request's id only. Approving comes with the web-session approval ceremony, so the
// Authorize button is off and says so (no pretend success).
import { useId } from 'react';
import type { ContractError, DeepLinkRequest } from '../../../../preload/contract';
import { useKeyport } from '../../services/KeyportContext';
import { call } from '../../services/keyport';
import { ErrorAlert } from '../components/ErrorAlert';

interface AuthorizeWebSessionProps {
  request: DeepLinkRequest;
  /** After Cancel: the request is dropped in the backend, and the app goes back. */
  onClose(): void;
}

export function AuthorizeWebSession({ request, onClose }: AuthorizeWebSessionProps) {
  const api = useKeyport();
  const headingId = useId();
  const noteId = useId();
  const cancel = async () => {
    await call(() => api.deepLinks.dismiss({ id: request.id }));
    onClose();
  };
  return (
    <section className="screen" aria-labelledby={headingId}>
      <h2 id={headingId}>Verify a browser</h2>
      <div className="panel link-request">
        <p>A browser asks to be verified by this device.</p>
        <dl className="facts">
          <dt>Cluster</dt>
          <dd>
            {request.cluster.name} ({request.cluster.address})
          </dd>
          <dt>Request</dt>
          <dd>{request.id}</dd>
        </dl>
        <p id={noteId} className="hint">
          Authorizing a browser comes with the web-session approval, in a later version of Keyport Connect.
          Nothing has been approved.
        </p>
        <div className="form-actions">
          <button type="button" className="button button-primary" disabled aria-describedby={noteId}>
            Authorize
          </button>
          <button type="button" className="button" onClick={() => void cancel()}>
            Cancel
          </button>
        </div>
      </div>
    </section>
  );
}

/** A keyport:// link that was refused: what was wrong with it, and nothing kept. */
export function RefusedLink({ error, onClose }: { error: ContractError; onClose(): void }) {
  const headingId = useId();
  return (
    <section className="screen" aria-labelledby={headingId}>
      <h2 id={headingId}>This link cannot be opened</h2>
      <ErrorAlert
        error={error}
        describe={(refused) => refused.message}
        action={
          <button type="button" className="button" onClick={onClose}>
            Close
          </button>
        }
      />
    </section>
  );
}
