// One dialog per prompt kind. Each answers with exactly the value its kind expects, checks what it can
// before sending (the backend checks again), and cancels with Escape or its Cancel button.
import { useId, useRef, useState } from 'react';
import type { FormEvent, ReactNode } from 'react';
import type { ContractError, Prompt, PromptAnswer } from '../../../../preload/contract';
import { Dialog } from '../components/Dialog';
import { ErrorAlert } from '../components/ErrorAlert';

type PromptOf<K extends Prompt['kind']> = Extract<Prompt, { kind: K }>;

export interface PromptDialogProps<P extends Prompt = Prompt> {
  prompt: P;
  busy: boolean;
  error: ContractError | null;
  answer(value: PromptAnswer): void;
  cancel(): void;
}

function FieldError({ id, message }: { id: string; message: string | null }) {
  if (!message) return null;
  return (
    <p id={id} className="field-error" role="alert">
      {message}
    </p>
  );
}

interface PromptFormProps {
  title: string;
  submitLabel: string;
  busy: boolean;
  error: ContractError | null;
  cancel(): void;
  onSubmit(): void;
  children: ReactNode;
}

function PromptForm({ title, submitLabel, busy, error, cancel, onSubmit, children }: PromptFormProps) {
  function submit(event: FormEvent) {
    event.preventDefault();
    if (!busy) onSubmit();
  }
  return (
    <Dialog title={title} onCancel={cancel} busy={busy}>
      <form className="dialog-form" onSubmit={submit} noValidate>
        {children}
        <ErrorAlert error={error} />
        <div className="dialog-actions">
          <button type="submit" className="button button-primary" disabled={busy}>
            {submitLabel}
          </button>
          <button type="button" className="button" onClick={cancel}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function TapKeyDialog({ prompt, cancel, error }: PromptDialogProps<PromptOf<'tapKey'>>) {
  return (
    <Dialog title="Security key" onCancel={cancel}>
      <div className="tap-key">
        <span className="key-pulse" aria-hidden="true" />
        <p className="dialog-message">{prompt.message}</p>
      </div>
      <ErrorAlert error={error} />
      <div className="dialog-actions">
        <button type="button" className="button" onClick={cancel}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

export function KeyPinDialog({ prompt, busy, error, answer, cancel }: PromptDialogProps<PromptOf<'keyPin'>>) {
  const [pin, setPin] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const inputId = useId();
  const problemId = useId();
  const retriesId = useId();
  const describedBy = [prompt.retriesLeft !== undefined ? retriesId : '', problem ? problemId : '']
    .filter(Boolean)
    .join(' ');
  return (
    <PromptForm
      title="Security key PIN"
      submitLabel="Continue"
      busy={busy}
      error={error}
      cancel={cancel}
      onSubmit={() => {
        if (pin.length === 0) return setProblem('Enter the PIN of your security key.');
        setProblem(null);
        answer({ kind: 'keyPin', pin });
      }}
    >
      <p className="dialog-message">Enter the PIN of your security key.</p>
      <label htmlFor={inputId}>PIN</label>
      <input
        id={inputId}
        type="password"
        autoComplete="off"
        value={pin}
        onChange={(event) => setPin(event.target.value)}
        aria-invalid={problem ? true : undefined}
        aria-describedby={describedBy || undefined}
      />
      {prompt.retriesLeft !== undefined && (
        <p id={retriesId} className="hint">
          {prompt.retriesLeft === 1 ? '1 attempt left' : `${prompt.retriesLeft} attempts left`}
        </p>
      )}
      <FieldError id={problemId} message={problem} />
    </PromptForm>
  );
}

const MIN_PIN_LENGTH = 4;

export function NewKeyPinDialog({ busy, error, answer, cancel }: PromptDialogProps<PromptOf<'newKeyPin'>>) {
  const [pin, setPin] = useState('');
  const [repeat, setRepeat] = useState('');
  const [problem, setProblem] = useState<{ field: 'pin' | 'repeat'; message: string } | null>(null);
  const pinId = useId();
  const repeatId = useId();
  const problemId = useId();
  const hintId = useId();
  return (
    <PromptForm
      title="Set a security key PIN"
      submitLabel="Set PIN"
      busy={busy}
      error={error}
      cancel={cancel}
      onSubmit={() => {
        if (pin.length < MIN_PIN_LENGTH) {
          return setProblem({ field: 'pin', message: `A PIN has at least ${MIN_PIN_LENGTH} characters.` });
        }
        if (pin !== repeat)
          return setProblem({ field: 'repeat', message: 'The two PINs differ. Type them again.' });
        setProblem(null);
        answer({ kind: 'newKeyPin', pin });
      }}
    >
      <p className="dialog-message" id={hintId}>
        This security key has no PIN yet. Choose one of at least {MIN_PIN_LENGTH} characters; the key asks for
        it from now on.
      </p>
      <label htmlFor={pinId}>New PIN</label>
      <input
        id={pinId}
        type="password"
        autoComplete="new-password"
        value={pin}
        onChange={(event) => setPin(event.target.value)}
        aria-invalid={problem?.field === 'pin' || undefined}
        aria-describedby={problem?.field === 'pin' ? `${hintId} ${problemId}` : hintId}
      />
      <label htmlFor={repeatId}>Repeat the PIN</label>
      <input
        id={repeatId}
        type="password"
        autoComplete="new-password"
        value={repeat}
        onChange={(event) => setRepeat(event.target.value)}
        aria-invalid={problem?.field === 'repeat' || undefined}
        aria-describedby={problem?.field === 'repeat' ? problemId : undefined}
      />
      <FieldError id={problemId} message={problem?.message ?? null} />
    </PromptForm>
  );
}

export function OtpCodeDialog({ busy, error, answer, cancel }: PromptDialogProps<PromptOf<'otpCode'>>) {
  const [code, setCode] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const inputId = useId();
  const problemId = useId();
  return (
    <PromptForm
      title="One-time code"
      submitLabel="Continue"
      busy={busy}
      error={error}
      cancel={cancel}
      onSubmit={() => {
        const trimmed = code.trim();
        if (!/^\d{6,8}$/.test(trimmed))
          return setProblem('Enter the 6 to 8 digits your authenticator app shows.');
        setProblem(null);
        answer({ kind: 'otpCode', code: trimmed });
      }}
    >
      <p className="dialog-message">Enter the code from your authenticator app.</p>
      <label htmlFor={inputId}>Code</label>
      <input
        id={inputId}
        type="text"
        inputMode="numeric"
        autoComplete="one-time-code"
        maxLength={12}
        value={code}
        onChange={(event) => setCode(event.target.value)}
        aria-invalid={problem ? true : undefined}
        aria-describedby={problem ? problemId : undefined}
      />
      <FieldError id={problemId} message={problem} />
    </PromptForm>
  );
}

export function ChooseKeyDialog({
  prompt,
  busy,
  error,
  answer,
  cancel,
}: PromptDialogProps<PromptOf<'chooseKey'>>) {
  return (
    <Dialog title="Choose an account" onCancel={cancel} busy={busy}>
      <p className="dialog-message">Your security key holds several accounts for this cluster.</p>
      <ul className="account-choices">
        {prompt.accounts.map((account, index) => (
          <li key={index}>
            <button
              type="button"
              className="button account-choice"
              disabled={busy}
              onClick={() => answer({ kind: 'chooseKey', index })}
            >
              {account.name || account.displayName || `Account ${index + 1}`}
            </button>
          </li>
        ))}
      </ul>
      <ErrorAlert error={error} />
      <div className="dialog-actions">
        <button type="button" className="button" onClick={cancel}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

export function TrustCaPinDialog({
  prompt,
  busy,
  error,
  answer,
  cancel,
}: PromptDialogProps<PromptOf<'trustCaPin'>>) {
  const refuseRef = useRef<HTMLButtonElement>(null);
  const refuse = () => answer({ kind: 'trustCaPin', trust: false });
  return (
    <Dialog title="Trust this cluster?" onCancel={cancel} initialFocus={refuseRef} busy={busy}>
      <p className="dialog-message">
        This is the first connection to <strong>{prompt.address}</strong>. Trust it only if this CA pin
        matches the one your administrator gave you:
      </p>
      <code className="pin">{prompt.caPin}</code>
      <ErrorAlert error={error} />
      <div className="dialog-actions">
        <button
          type="button"
          className="button button-primary"
          disabled={busy}
          onClick={() => answer({ kind: 'trustCaPin', trust: true })}
        >
          Trust
        </button>
        <button type="button" className="button" ref={refuseRef} disabled={busy} onClick={refuse}>
          Don&apos;t trust
        </button>
      </div>
    </Dialog>
  );
}

export function DeviceNameDialog({ busy, error, answer, cancel }: PromptDialogProps<PromptOf<'deviceName'>>) {
  const [name, setName] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const inputId = useId();
  const problemId = useId();
  return (
    <PromptForm
      title="Name the new key"
      submitLabel="Save"
      busy={busy}
      error={error}
      cancel={cancel}
      onSubmit={() => {
        const trimmed = name.trim();
        if (trimmed.length === 0) return setProblem('Give the new key a name.');
        setProblem(null);
        answer({ kind: 'deviceName', name: trimmed });
      }}
    >
      <p className="dialog-message">The new security key is ready. Give it a name you will recognise.</p>
      <label htmlFor={inputId}>Key name</label>
      <input
        id={inputId}
        type="text"
        autoComplete="off"
        maxLength={64}
        value={name}
        onChange={(event) => setName(event.target.value)}
        aria-invalid={problem ? true : undefined}
        aria-describedby={problem ? problemId : undefined}
      />
      <FieldError id={problemId} message={problem} />
    </PromptForm>
  );
}
