import { useCallback, useEffect, useId, useRef, useState } from 'react';
import type { FormEvent, ReactNode } from 'react';
import type { ContractError, DeviceTrustView } from '../../../../preload/contract';
import {
  askForToken,
  describeEnrollError,
  deviceStateLabel,
  deviceTrustModeLabel,
  enrollTokenProblem,
} from '../../services/deviceTrust';
import { describeError } from '../../services/errors';
import { useAction } from '../../services/hooks';
import { useKeyport } from '../../services/KeyportContext';
import { ErrorAlert } from '../components/ErrorAlert';
import { recoverFocus } from '../components/focus';
import { Progress } from '../components/Progress';

interface ThisDeviceProps {
  /** The signed-in cluster's address. */
  cluster: string;
  /** Opened from a "needs a trusted device" error: the section takes the focus. */
  focusOnOpen?: boolean;
  onSignInAgain(): void;
  /** A way out for errors that signing in again fixes. */
  relogin(error: ContractError): ReactNode;
}

function osLabel(osType: string): string {
  return { linux: 'Linux', macos: 'macOS', windows: 'Windows' }[osType] ?? osType;
}

/** "This device": its device trust state on the signed-in cluster, and its enrollment. */
export function ThisDevice({ cluster, focusOnOpen = false, onSignInAgain, relogin }: ThisDeviceProps) {
  const api = useKeyport();
  const load = useAction();
  const enroll = useAction();
  const [status, setStatus] = useState<DeviceTrustView | null>(null);
  // The token lives in the field until it is sent; it is cleared as soon as it is.
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState('');
  const headingRef = useRef<HTMLHeadingElement>(null);
  const tokenRef = useRef<HTMLInputElement>(null);
  const ids = { heading: useId(), token: useId(), tokenHint: useId(), problem: useId() };
  const { run: runLoad } = load;

  const refresh = useCallback(async () => {
    const result = await runLoad(() => api.device.status({ cluster }));
    if (result?.ok) setStatus(result.value);
  }, [api, cluster, runLoad]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  useEffect(() => {
    if (focusOnOpen) headingRef.current?.focus();
  }, [focusOnOpen]);

  async function enrollWith(sent: string | undefined) {
    setDone('');
    const result = await enroll.run(() =>
      api.device.enroll(sent === undefined ? { cluster } : { cluster, token: sent }),
    );
    if (!result) return;
    if (!result.ok) {
      // A refused token is replaced in its field; otherwise focus comes back only if the wait lost it.
      if (result.error.details?.fieldPath === 'token') return tokenRef.current?.focus();
      return recoverFocus(tokenRef.current ?? headingRef.current);
    }
    setDone(`This device (${result.value.assetTag}) is enrolled.`);
    await refresh();
    headingRef.current?.focus();
  }

  async function enrollWithToken(event: FormEvent) {
    event.preventDefault();
    if (enroll.busy) return;
    const sent = token.trim();
    const found = enrollTokenProblem(sent);
    setProblem(found);
    if (found) return tokenRef.current?.focus();
    setToken('');
    await enrollWith(sent);
  }

  const enrollable =
    status !== null &&
    status.mode !== 'off' &&
    !status.tpmProblem &&
    (status.state === 'registered' || status.state === 'not_registered');
  const error = enroll.error ?? load.error;

  return (
    <section
      className="panel"
      aria-labelledby={ids.heading}
      aria-busy={enroll.busy || load.busy || undefined}
    >
      <h3 id={ids.heading} ref={headingRef} tabIndex={-1}>
        This device
      </h3>
      {status === null ? (
        load.busy || !load.error ? (
          <Progress active label="Checking this device…" />
        ) : (
          <p className="empty">
            This device&apos;s status could not be loaded.{' '}
            <button type="button" className="button" onClick={() => void refresh()}>
              Try again
            </button>
          </p>
        )
      ) : (
        <>
          <dl className="facts">
            <dt>Device trust</dt>
            <dd>{deviceStateLabel(status)}</dd>
            <dt>Asset tag</dt>
            <dd>{status.assetTag || 'Unknown'}</dd>
            <dt>Operating system</dt>
            <dd>{osLabel(status.osType)}</dd>
            {status.registered?.owner && (
              <>
                <dt>Enrolled by</dt>
                <dd>{status.registered.owner}</dd>
              </>
            )}
            <dt>Cluster policy</dt>
            <dd>{deviceTrustModeLabel(status.mode)}</dd>
          </dl>
          {status.mode === 'off' && <p className="muted">Device trust is off on this cluster.</p>}
          {status.tpmProblem && status.mode !== 'off' && (
            <p className="notice">This device cannot be enrolled: {status.tpmProblem}</p>
          )}
          {status.state === 'enrolled' && !status.trustedInSession && (
            <div className="notice">
              <p>This device is enrolled. Sign in again to get a trusted session.</p>
              <button type="button" className="button button-primary" onClick={onSignInAgain}>
                Sign in again
              </button>
            </div>
          )}
          {status.state === 'other_tpm' && (
            <p className="notice">
              This TPM is not the one enrolled for this device. Ask an admin to remove the device and register
              it again, then enroll it from here.
            </p>
          )}
          {status.state === 'locked' && (
            <p className="notice">An admin locked this device. Ask them why, and to unlock it.</p>
          )}
          {enrollable && (
            <form
              className="add-key"
              aria-label="Enroll this device"
              onSubmit={(event) => void enrollWithToken(event)}
              noValidate
            >
              <p className="device-name">Enroll this device</p>
              <p id={ids.tokenHint} className="muted">
                {status.state === 'registered'
                  ? `Paste the enrollment token an admin made for this device (asset tag ${status.assetTag}).`
                  : askForToken(status.assetTag)}
              </p>
              <div className="field">
                <label htmlFor={ids.token}>Enrollment token</label>
                <input
                  id={ids.token}
                  ref={tokenRef}
                  type="password"
                  autoComplete="off"
                  spellCheck={false}
                  maxLength={256}
                  value={token}
                  onChange={(event) => setToken(event.target.value)}
                  aria-invalid={problem ? true : undefined}
                  aria-describedby={problem ? `${ids.tokenHint} ${ids.problem}` : ids.tokenHint}
                />
                {problem && (
                  <p id={ids.problem} className="field-error" role="alert">
                    {problem}
                  </p>
                )}
              </div>
              <div className="form-actions">
                <button type="submit" className="button button-primary" disabled={enroll.busy}>
                  Enroll with token
                </button>
                {status.selfEnrollmentAllowed && (
                  <button
                    type="button"
                    className="button"
                    disabled={enroll.busy}
                    onClick={() => void enrollWith(undefined)}
                  >
                    Enroll with my admin role
                  </button>
                )}
              </div>
              <Progress active={enroll.busy} label="Enrolling this device…" />
            </form>
          )}
        </>
      )}
      <p className="status" role="status">
        {done}
      </p>
      <ErrorAlert
        error={error}
        held={enroll.heldError}
        describe={(e) =>
          e === enroll.error || e === enroll.heldError ? describeEnrollError(e, status) : describeError(e)
        }
        action={error ? relogin(error) : null}
      />
    </section>
  );
}
