// The frames every prompt dialog is built from (PromptDialogs.tsx, PivDialogs.tsx): the form with its
// footer, one text field, a new secret typed twice, and a wait for hardware. Each checks what it can before
// sending (the backend checks again) and cancels with Escape or its Cancel button.
import { useId, useState } from 'react';
import type { FormEvent, InputHTMLAttributes, ReactNode } from 'react';
import type { ContractError, Prompt, PromptAnswer } from '../../../../preload/contract';
import { Dialog } from '../components/Dialog';
import { ErrorAlert } from '../components/ErrorAlert';

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

export interface NewSecretPromptProps extends PromptActions {
  title: string;
  submitLabel: string;
  /** Why a new secret is asked and what makes a good one; it describes the first field. */
  message: ReactNode;
  label: string;
  repeatLabel: string;
  maxLength?: number;
  /** What is wrong with the new value, or null when it can be sent (the repeat is checked after). */
  validate(value: string): string | null;
  /** The problem shown under the repeat when the two differ. */
  mismatch: string;
  toAnswer(value: string): PromptAnswer;
}

/** A new secret (a PIN, a PUK) typed twice: the problem shown under the field it is about. */
export function NewSecretPrompt({
  title,
  submitLabel,
  message,
  label,
  repeatLabel,
  maxLength,
  validate,
  mismatch,
  toAnswer,
  busy,
  error,
  answer,
  cancel,
}: NewSecretPromptProps) {
  const [value, setValue] = useState('');
  const [repeat, setRepeat] = useState('');
  const [problem, setProblem] = useState<{ field: 'value' | 'repeat'; message: string } | null>(null);
  const valueId = useId();
  const repeatId = useId();
  const problemId = useId();
  const hintId = useId();
  return (
    <PromptForm
      title={title}
      submitLabel={submitLabel}
      busy={busy}
      error={error}
      cancel={cancel}
      onSubmit={() => {
        const found = validate(value);
        if (found) return setProblem({ field: 'value', message: found });
        if (value !== repeat) return setProblem({ field: 'repeat', message: mismatch });
        setProblem(null);
        answer(toAnswer(value));
      }}
    >
      <p className="dialog-message" id={hintId}>
        {message}
      </p>
      <label htmlFor={valueId}>{label}</label>
      <input
        id={valueId}
        type="password"
        autoComplete="new-password"
        maxLength={maxLength}
        value={value}
        onChange={(event) => setValue(event.target.value)}
        aria-invalid={problem?.field === 'value' || undefined}
        aria-describedby={problem?.field === 'value' ? `${hintId} ${problemId}` : hintId}
      />
      <label htmlFor={repeatId}>{repeatLabel}</label>
      <input
        id={repeatId}
        type="password"
        autoComplete="new-password"
        maxLength={maxLength}
        value={repeat}
        onChange={(event) => setRepeat(event.target.value)}
        aria-invalid={problem?.field === 'repeat' || undefined}
        aria-describedby={problem?.field === 'repeat' ? problemId : undefined}
      />
      <FieldError id={problemId} message={problem?.message ?? null} />
    </PromptForm>
  );
}

interface WaitDialogProps {
  title: string;
  /** The key's pulse (touch it now) or a spinner (hardware or the backend at work). */
  mark: 'key-pulse' | 'spinner';
  message: ReactNode;
  /** Announces the message (role="status"). */
  live?: boolean;
  /** A line under the message. */
  hint?: ReactNode;
  /** Where the wait can be given up: Escape and a Cancel button, the backend's error above it. Without, the
   * dialog is busy until the backend closes it. */
  cancel?: { cancel(): void; error: ContractError | null };
}

/** A dialog that asks nothing: it says what the person or the hardware is being waited for. */
export function WaitDialog({ title, mark, message, live = false, hint, cancel }: WaitDialogProps) {
  return (
    <Dialog title={title} onCancel={cancel ? cancel.cancel : () => {}} busy={!cancel}>
      <div className="tap-key" role={live ? 'status' : undefined}>
        <span className={mark} aria-hidden="true" />
        <p className="dialog-message">{message}</p>
      </div>
      {hint && <p className="hint">{hint}</p>}
      {cancel && <DialogFooter error={cancel.error} cancel={cancel.cancel} />}
    </Dialog>
  );
}
