// One dialog per prompt kind. Each answers with exactly the value its kind expects, checks what it can
// before sending (the backend checks again), and cancels with Escape or its Cancel button.
import { useId, useRef, useState } from 'react';
import type { FormEvent, InputHTMLAttributes, ReactNode } from 'react';
import type { ContractError, Prompt, PromptAnswer } from '../../../../preload/contract';
import { attemptsLeft } from '../../services/errors';
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

export function FieldError({ id, message }: { id: string; message: string | null }) {
  if (!message) return null;
  return (
    <p id={id} className="field-error" role="alert">
      {message}
    </p>
  );
}

interface DialogFooterProps {
  error: ContractError | null;
  /** Adds a Cancel button after the others. */
  cancel?: () => void;
  children?: ReactNode;
}

/** The end of every prompt dialog: the backend's error, if any, then the dialog's buttons. */
export function DialogFooter({ error, cancel, children }: DialogFooterProps) {
  return (
    <>
      <ErrorAlert error={error} />
      <div className="dialog-actions">
        {children}
        {cancel && (
          <button type="button" className="button" onClick={cancel}>
            Cancel
          </button>
        )}
      </div>
    </>
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

export function PromptForm({ title, submitLabel, busy, error, cancel, onSubmit, children }: PromptFormProps) {
  function submit(event: FormEvent) {
    event.preventDefault();
    if (!busy) onSubmit();
  }
  return (
    <Dialog title={title} onCancel={cancel} busy={busy}>
      <form className="dialog-form" onSubmit={submit} noValidate>
        {children}
        <DialogFooter error={error} cancel={cancel}>
          <button type="submit" className="button button-primary" disabled={busy}>
            {submitLabel}
          </button>
        </DialogFooter>
      </form>
    </Dialog>
  );
}

type PromptActions = Omit<PromptDialogProps, 'prompt'>;

export interface TextFieldPromptProps extends PromptActions {
  title: string;
  /** The sentence above the field. */
  message: ReactNode;
  label: string;
  submitLabel: string;
  /** How the field behaves: its type, keyboard and autofill hints, length limit. */
  input: Pick<InputHTMLAttributes<HTMLInputElement>, 'type' | 'inputMode' | 'autoComplete' | 'maxLength'>;
  /** A line under the field that describes it (such as the attempts left). */
  hint?: ReactNode;
  /** What is wrong with the value, or null when it can be sent. */
  validate(value: string): string | null;
  /** The answer for a value that passed `validate`. */
  toAnswer(value: string): PromptAnswer;
}

/**
 * A prompt that asks for one text value: checked on submit, with the problem shown under the field and
 * announced, and the field marked invalid and described by it until the next submit.
 */
export function TextFieldPrompt({
  title,
  message,
  label,
  submitLabel,
  input,
  hint,
  validate,
  toAnswer,
  busy,
  error,
  answer,
  cancel,
}: TextFieldPromptProps) {
  const [value, setValue] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const inputId = useId();
  const hintId = useId();
  const problemId = useId();
  const describedBy = [hint ? hintId : '', problem ? problemId : ''].filter(Boolean).join(' ');
  return (
    <PromptForm
      title={title}
      submitLabel={submitLabel}
      busy={busy}
      error={error}
      cancel={cancel}
      onSubmit={() => {
        const found = validate(value);
        setProblem(found);
        if (found === null) answer(toAnswer(value));
      }}
    >
      <p className="dialog-message">{message}</p>
      <label htmlFor={inputId}>{label}</label>
      <input
        {...input}
        id={inputId}
        value={value}
        onChange={(event) => setValue(event.target.value)}
        aria-invalid={problem ? true : undefined}
        aria-describedby={describedBy || undefined}
      />
      {hint && (
        <p id={hintId} className="hint">
          {hint}
        </p>
      )}
      <FieldError id={problemId} message={problem} />
    </PromptForm>
  );
}

export function TapKeyDialog({ prompt, cancel, error }: PromptDialogProps<PromptOf<'tapKey'>>) {
  return (
    <Dialog title="Security key" onCancel={cancel}>
      <div className="tap-key">
        <span className="key-pulse" aria-hidden="true" />
        <p className="dialog-message">{prompt.message}</p>
      </div>
      <DialogFooter error={error} cancel={cancel} />
    </Dialog>
  );
}

export function KeyPinDialog({ prompt, busy, error, answer, cancel }: PromptDialogProps<PromptOf<'keyPin'>>) {
  const { retriesLeft } = prompt;
  return (
    <TextFieldPrompt
      title="Security key PIN"
      message="Enter the PIN of your security key."
      label="PIN"
      submitLabel="Continue"
      input={{ type: 'password', autoComplete: 'off' }}
      hint={retriesLeft === undefined ? undefined : attemptsLeft(retriesLeft)}
      validate={(pin) => (pin.length === 0 ? 'Enter the PIN of your security key.' : null)}
      toAnswer={(pin) => ({ kind: 'keyPin', pin })}
      busy={busy}
      error={error}
      answer={answer}
      cancel={cancel}
    />
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

const OTP_CODE = /^\d{6,8}$/;

export function OtpCodeDialog({ busy, error, answer, cancel }: PromptDialogProps<PromptOf<'otpCode'>>) {
  return (
    <TextFieldPrompt
      title="One-time code"
      message="Enter the code from your authenticator app."
      label="Code"
      submitLabel="Continue"
      input={{ type: 'text', inputMode: 'numeric', autoComplete: 'one-time-code', maxLength: 12 }}
      validate={(code) =>
        OTP_CODE.test(code.trim()) ? null : 'Enter the 6 to 8 digits your authenticator app shows.'
      }
      toAnswer={(code) => ({ kind: 'otpCode', code: code.trim() })}
      busy={busy}
      error={error}
      answer={answer}
      cancel={cancel}
    />
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
      <DialogFooter error={error} cancel={cancel} />
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
      <DialogFooter error={error}>
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
      </DialogFooter>
    </Dialog>
  );
}

export function DeviceNameDialog({ busy, error, answer, cancel }: PromptDialogProps<PromptOf<'deviceName'>>) {
  return (
    <TextFieldPrompt
      title="Name the new key"
      message="The new security key is ready. Give it a name you will recognise."
      label="Key name"
      submitLabel="Save"
      input={{ type: 'text', autoComplete: 'off', maxLength: 64 }}
      validate={(name) => (name.trim().length === 0 ? 'Give the new key a name.' : null)}
      toAnswer={(name) => ({ kind: 'deviceName', name: name.trim() })}
      busy={busy}
      error={error}
      answer={answer}
      cancel={cancel}
    />
  );
}

/**
 * Hardware at work (this device's TPM). Nothing to answer and nothing to cancel: the TPM finishes its step
 * in seconds, and the backend closes the dialog when it has.
 */
export function ProgressDialog({ prompt }: PromptDialogProps<PromptOf<'progress'>>) {
  return (
    <Dialog title="Device trust" onCancel={() => {}} busy>
      <div className="tap-key" role="status">
        <span className="spinner" aria-hidden="true" />
        <p className="dialog-message">{prompt.message}</p>
      </div>
    </Dialog>
  );
}

/**
 * Something the person should know while a ceremony goes on ("retrying on another auth server"). It asks
 * nothing; the ceremony's next prompt replaces it, and its end closes it.
 */
export function NoticeDialog({ prompt }: PromptDialogProps<PromptOf<'notice'>>) {
  const message = prompt.message.charAt(0).toUpperCase() + prompt.message.slice(1);
  return (
    <Dialog title="Please wait" onCancel={() => {}} busy>
      <div className="tap-key" role="status">
        <span className="spinner" aria-hidden="true" />
        <p className="dialog-message">{message}…</p>
      </div>
    </Dialog>
  );
}
