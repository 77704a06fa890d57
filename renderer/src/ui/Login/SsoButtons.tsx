// "Sign in with DISPLAY": one button per SSO connector the cluster lists (auth.connectors: name and display,
// nothing else), under the login form. The login itself runs in the backend (the IdP's page in the system
// browser, a waiting prompt with Cancel meanwhile); its errors show in the form's ErrorAlert.
import { useEffect, useState } from 'react';
import type { ConnectorView, ContractError } from '../../../../preload/contract';
import { describeError } from '../../services/errors';
import { useKeyport } from '../../services/KeyportContext';
import { recoverFocus } from '../components/focus';

/** The connectors `address` lists now; none until it has answered, or when it cannot be asked. */
export function useConnectors(address: string): ConnectorView[] {
  const api = useKeyport();
  const [connectors, setConnectors] = useState<ConnectorView[]>([]);
  useEffect(() => {
    let current = true;
    setConnectors([]);
    api.auth.connectors({ address }).then(
      (result) => {
        if (current && result.ok) setConnectors(result.value);
      },
      () => {},
    );
    return () => {
      current = false;
    };
  }, [api, address]);
  return connectors;
}

/**
 * An SSO login's error in the login form's words, except a refusal: the IdP's sign-in worked, so "wrong user
 * name or password" would mislead; the cluster's message says why (no role for these groups, the IdP's own
 * error, a local user of that name).
 */
export function describeSsoError(error: ContractError): string {
  return error.code === 'ACCESS_DENIED' || error.code === 'ALREADY_EXISTS'
    ? error.message
    : describeError(error);
}

interface SsoButtonsProps {
  connectors: ConnectorView[];
  disabled: boolean;
  /** Resolves when the sign-in has ended, however it ended. */
  onSignIn(connector: ConnectorView): Promise<void>;
}

export function SsoButtons({ connectors, disabled, onSignIn }: SsoButtonsProps) {
  if (connectors.length === 0) return null;
  return (
    <div className="sso-options" role="group" aria-label="Single sign-on">
      <p className="sso-divider" aria-hidden="true">
        <span>or</span>
      </p>
      {connectors.map((connector) => (
        <button
          key={connector.name}
          type="button"
          className="button sso-button"
          disabled={disabled}
          onClick={async (event) => {
            const button = event.currentTarget;
            await onSignIn(connector);
            // Still here (the sign-in failed or was cancelled): the focus, lost while the button was
            // disabled, comes back to it unless the person moved it.
            if (button.isConnected) recoverFocus(button);
          }}
        >
          Sign in with {connector.display}
        </button>
      ))}
    </div>
  );
}
