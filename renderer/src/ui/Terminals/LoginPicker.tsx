// "Connect" on a server: the person picks one of the logins their roles allow there.
import { useId, useState } from 'react';
import type { NodeView } from '../../../../preload/contract';
import { Dialog } from '../components/Dialog';

interface LoginPickerProps {
  node: NodeView;
  onConnect(login: string): void;
  onCancel(): void;
}

export function LoginPicker({ node, onConnect, onCancel }: LoginPickerProps) {
  const [login, setLogin] = useState(node.logins[0] ?? '');
  const name = useId();
  return (
    <Dialog title={`Connect to ${node.name}`} onCancel={onCancel}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (login) onConnect(login);
        }}
      >
        <fieldset className="choice">
          <legend>Log in as</legend>
          {node.logins.map((choice) => (
            <label key={choice} className="radio">
              <input
                type="radio"
                name={name}
                value={choice}
                checked={login === choice}
                onChange={() => setLogin(choice)}
              />
              {choice}
            </label>
          ))}
        </fieldset>
        <p className="muted">
          A terminal tab opens on {node.addr}. Where the cluster asks for it, tap your security key.
        </p>
        <div className="dialog-actions">
          <button type="submit" className="button button-primary" disabled={!login}>
            Connect
          </button>
          <button type="button" className="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
