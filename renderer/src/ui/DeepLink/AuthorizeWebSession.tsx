// The screen a keyport:// link fills in. The link never acts by itself: this screen asks the cluster what the
// browser's request is (its user, the browser's address and user agent, the short code the web page shows)
// and the person decides. Authorize has this device approve it (its TPM); the backend then opens the
// confirm URL in the browser. The tokens stay in the backend: this screen knows the cluster, the request's
// id and what the cluster said. Signed out or expired, the screen asks for a sign-in first, in place.
import { useCallback, useEffect, useId, useState } from 'react';
import type {
  ClusterView,
  ContractError,
  DeepLinkRequest,
  ProfileView,
  WebApprovalView,
} from '../../../../preload/contract';
import { useKeyport } from '../../services/KeyportContext';
import { call } from '../../services/keyport';
import { ErrorAlert } from '../components/ErrorAlert';
import { Login } from '../Login/Login';

interface AuthorizeWebSessionProps {
  request: DeepLinkRequest;
  /** The link's cluster as the app knows it (for an in-place sign-in). */
  cluster: ClusterView | undefined;
  /** Who is signed in (its address and expiry): the request is asked again when it changes. */
  signedIn: ProfileView | null;
  onSignedIn(profile: ProfileView): void;
  /** After Cancel or Close: the request is dropped in the backend, and the app goes back. */
  onClose(): void;
}

type Step =
  | { name: 'asking' }
  | { name: 'shown'; view: WebApprovalView }
  | { name: 'authorizing'; view: Extract<WebApprovalView, { kind: 'ready' }> }
  | { name: 'done'; assetTag: string }
  | { name: 'failed'; error: ContractError };

export function AuthorizeWebSession({
  request,
  cluster,
  signedIn,
  onSignedIn,
  onClose,
}: AuthorizeWebSessionProps) {
  const api = useKeyport();
  const headingId = useId();
  const codeId = useId();
  const [step, setStep] = useState<Step>({ name: 'asking' });
  const signedInKey = signedIn ? `${signedIn.address} ${signedIn.expiresMs}` : '';

  const inspect = useCallback(async () => {
    setStep({ name: 'asking' });
    const result = await call(() => api.deepLinks.inspect({ id: request.id }));
    setStep(result.ok ? { name: 'shown', view: result.value } : { name: 'failed', error: result.error });
  }, [api, request.id]);

  useEffect(() => {
    void inspect();
  }, [inspect, signedInKey]);

  const cancel = async () => {
    await call(() => api.deepLinks.dismiss({ id: request.id }));
    onClose();
  };

  const authorize = async (view: Extract<WebApprovalView, { kind: 'ready' }>) => {
    setStep({ name: 'authorizing', view });
    const result = await call(() => api.deepLinks.authorize({ id: request.id }));
    if (result.ok) return setStep({ name: 'done', assetTag: result.value.assetTag });
    // The session ended meanwhile: the cluster is asked again, which offers the sign-in.
    if (result.error.code === 'UNAUTHENTICATED' || result.error.code === 'CERTIFICATE_EXPIRED')
      return void inspect();
    setStep({ name: 'failed', error: result.error });
  };

  type Ready = Extract<WebApprovalView, { kind: 'ready' }>;
  const ready: Ready | undefined =
    step.name === 'authorizing'
      ? step.view
      : step.name === 'shown' && step.view.kind === 'ready'
        ? step.view
        : undefined;

  const cancelButton = (
    <button type="button" className="button" onClick={() => void cancel()}>
      Cancel
    </button>
  );

  return (
    <section className="screen" aria-labelledby={headingId}>
      <h2 id={headingId}>Verify a browser</h2>
      <div className="panel link-request" aria-busy={step.name === 'asking' || step.name === 'authorizing'}>
        <p>A browser asks to be verified by this device.</p>
        <dl className="facts">
          <dt>Cluster</dt>
          <dd>
            {request.cluster.name} ({request.cluster.address})
          </dd>
          <dt>Request</dt>
          <dd>{request.id}</dd>
          {ready && (
            <>
              <dt>User</dt>
              <dd>{ready.user}</dd>
              <dt>Browser address</dt>
              <dd>{ready.browserAddr}</dd>
              <dt>Browser</dt>
              <dd>{ready.userAgent || 'not told'}</dd>
              <dt>Code</dt>
              <dd id={codeId} className="link-code">
                {ready.code}
              </dd>
            </>
          )}
        </dl>
        {step.name === 'asking' && <p role="status">Asking {request.cluster.name} about this request…</p>}
        {step.name === 'failed' && <ErrorAlert error={step.error} action={cancelButton} />}
        {step.name === 'done' && (
          <>
            <p role="status">
              Approved by this device ({step.assetTag}). Your browser opens to finish; the web page then shows
              the session as trusted.
            </p>
            <div className="form-actions">
              <button type="button" className="button" onClick={onClose}>
                Close
              </button>
            </div>
          </>
        )}
        {step.name === 'shown' && step.view.kind === 'signInRequired' && (
          <>
            <p role="status">{step.view.reason} This request stays here meanwhile.</p>
            {cluster && (
              <Login cluster={cluster} initialUser={signedIn?.user ?? ''} onSignedIn={onSignedIn} />
            )}
            <div className="form-actions">{cancelButton}</div>
          </>
        )}
        {ready && (
          <>
            <p className="hint">
              Authorize only if the web page you opened shows this same code and you asked for it.
            </p>
            <div className="form-actions">
              <button
                type="button"
                className="button button-primary"
                aria-describedby={codeId}
                disabled={step.name === 'authorizing'}
                onClick={() => void authorize(ready)}
              >
                {step.name === 'authorizing' ? 'Authorizing…' : 'Authorize'}
              </button>
              {cancelButton}
            </div>
          </>
        )}
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
