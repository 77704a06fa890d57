import { useCallback, useEffect, useId, useRef, useState } from 'react';
import type { ReactNode } from 'react';
import type { ContractError, MfaDeviceView } from '../../../../preload/contract';
import { useAction } from '../../services/hooks';
import { useKeyport } from '../../services/KeyportContext';
import { formatDate } from '../../services/time';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { ErrorAlert } from '../components/ErrorAlert';
import { recoverFocus } from '../components/focus';
import { Progress } from '../components/Progress';

export function deviceTypeLabel(device: MfaDeviceView): string {
  if (device.type === 'webauthn') return device.passkey ? 'Passkey' : 'Security key';
  if (device.type === 'totp') return 'One-time code';
  return 'Other';
}

interface MfaDevicesProps {
  /** A way out for errors that signing in again fixes. */
  relogin(error: ContractError): ReactNode;
}

export function MfaDevices({ relogin }: MfaDevicesProps) {
  const api = useKeyport();
  const load = useAction();
  const change = useAction();
  const [devices, setDevices] = useState<MfaDeviceView[] | null>(null);
  const [passwordless, setPasswordless] = useState(false);
  const [status, setStatus] = useState('');
  const [confirming, setConfirming] = useState<MfaDeviceView | null>(null);
  const [pending, setPending] = useState<'add' | 'remove' | null>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const addRef = useRef<HTMLButtonElement>(null);
  const headingId = useId();
  const passwordlessId = useId();
  const addHintId = useId();
  const { run: runLoad } = load;

  const refresh = useCallback(async () => {
    const result = await runLoad(() => api.mfa.list());
    if (result?.ok) setDevices(result.value);
  }, [api, runLoad]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  async function addKey() {
    setStatus('');
    setPending('add');
    const result = await change.run(() => api.mfa.add({ passwordless }));
    setPending(null);
    recoverFocus(addRef.current);
    if (!result?.ok) return;
    setStatus(`Security key "${result.value.name}" added.`);
    setPasswordless(false);
    await refresh();
  }

  async function removeDevice(device: MfaDeviceView) {
    setConfirming(null);
    setStatus('');
    setPending('remove');
    const result = await change.run(() => api.mfa.remove({ name: device.name }));
    setPending(null);
    if (!result?.ok) return recoverFocus(headingRef.current);
    setStatus(`"${device.name}" removed.`);
    await refresh();
    headingRef.current?.focus();
  }

  const error = change.error ?? load.error;
  return (
    <section className="panel" aria-labelledby={headingId} aria-busy={change.busy || load.busy || undefined}>
      <h3 id={headingId} ref={headingRef} tabIndex={-1}>
        MFA devices
      </h3>
      {devices === null ? (
        load.busy || !load.error ? (
          <Progress active label="Loading MFA devices…" />
        ) : (
          <p className="empty">
            The MFA devices could not be loaded.{' '}
            <button type="button" className="button" onClick={() => void refresh()}>
              Try again
            </button>
          </p>
        )
      ) : devices.length === 0 ? (
        <p className="empty">No MFA devices yet.</p>
      ) : (
        <ul className="device-list" aria-label="MFA devices">
          {devices.map((device) => (
            <li key={device.id} className="device">
              <div>
                <p className="device-name">{device.name}</p>
                <p className="muted">
                  {deviceTypeLabel(device)}
                  {device.addedMs > 0 && <> · added {formatDate(device.addedMs)}</>}
                </p>
              </div>
              <button
                type="button"
                className="button"
                aria-label={`Remove ${device.name}`}
                disabled={change.busy}
                onClick={() => setConfirming(device)}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}

      <fieldset className="add-key" aria-describedby={addHintId}>
        <legend>Add a security key</legend>
        <p id={addHintId} className="muted">
          You tap one of your keys first, then the new one.
        </p>
        <div className="checkbox">
          <input
            id={passwordlessId}
            type="checkbox"
            checked={passwordless}
            onChange={(event) => setPasswordless(event.target.checked)}
          />
          <label htmlFor={passwordlessId}>Let the new key sign in without a password (a passkey)</label>
        </div>
        <div className="form-actions">
          <button
            type="button"
            className="button button-primary"
            ref={addRef}
            disabled={change.busy}
            onClick={() => void addKey()}
          >
            Add security key
          </button>
          <Progress
            active={change.busy}
            label={pending === 'remove' ? 'Removing device…' : 'Adding security key…'}
          />
        </div>
      </fieldset>
      <p className="status" role="status">
        {status}
      </p>
      <ErrorAlert error={error} action={error ? relogin(error) : null} />

      {confirming && (
        <ConfirmDialog
          title={`Remove ${confirming.name}?`}
          confirmLabel="Remove"
          onConfirm={() => void removeDevice(confirming)}
          onCancel={() => setConfirming(null)}
        >
          <p className="dialog-message">
            You can no longer use {confirming.name} to sign in. You may be asked to confirm with another
            device.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}
