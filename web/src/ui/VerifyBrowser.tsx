// "Verify this browser with Keyport Connect": for an untrusted session where device trust applies, asks the
// server for a keyport:// link and shows it with its short code. The link opens Keyport Connect on the
// person's trusted device, which shows the same code; approving there opens the confirm URL in this browser,
// which comes back here trusted.
import { useState } from 'react';
import type { WebDeviceApprovalRequest, WebSessionView } from '../../../proto/webapi';
import { api } from '../api';

export function VerifyBrowser(props: { view: WebSessionView }) {
  const { view } = props;
  const [request, setRequest] = useState<WebDeviceApprovalRequest | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  async function ask() {
    setError(undefined);
    setBusy(true);
    try {
      setRequest(await api.requestDeviceApproval(view.csrfToken));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="verify-heading">
      <h2 id="verify-heading">Verify this browser</h2>
      <p>
        {view.deviceTrust === 'required'
          ? 'This cluster requires a trusted device for your web sessions.'
          : 'You can verify this browser with a trusted device.'}{' '}
        Keyport Connect on your enrolled device approves it.
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {request ? (
        <div role="status" data-testid="verify-request">
          <p>
            Check that Keyport Connect shows this code:{' '}
            <strong data-testid="verify-code">{request.code}</strong>
          </p>
          <p>
            <a className="button" href={request.link} data-testid="verify-link">
              Open Keyport Connect
            </a>
          </p>
          <p className="hint">
            The request is valid until{' '}
            <time dateTime={new Date(request.expiresMs).toISOString()}>
              {new Date(request.expiresMs).toLocaleTimeString()}
            </time>
            . Once approved, this page comes back verified.
          </p>
        </div>
      ) : (
        <button type="button" onClick={() => void ask()} disabled={busy}>
          Verify this browser with Keyport Connect
        </button>
      )}
    </section>
  );
}
