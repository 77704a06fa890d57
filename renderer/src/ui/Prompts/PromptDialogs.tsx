// One dialog per prompt kind (the hardware-key ones in PivDialogs.tsx), built from PromptFrames.tsx. Each
// answers with exactly the value its kind expects, checks what it can before sending (the backend checks
// again), and cancels with Escape or its Cancel button.
import { useRef } from 'react';
import type { Prompt } from '../../../../preload/contract';
import { attemptsLeft } from '../../services/errors';
import { Dialog } from '../components/Dialog';
import { DialogFooter, NewSecretPrompt, TextFieldPrompt, WaitDialog } from './PromptFrames';
import type { PromptDialogProps } from './PromptFrames';

type PromptOf<K extends Prompt['kind']> = Extract<Prompt, { kind: K }>;

export function TapKeyDialog({ prompt, cancel, error }: PromptDialogProps<PromptOf<'tapKey'>>) {
  return (
    <WaitDialog title="Security key" mark="key-pulse" message={prompt.message} cancel={{ cancel, error }} />
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
  return (
    <NewSecretPrompt
      title="Set a security key PIN"
      submitLabel="Set PIN"
      message={
        <>
          This security key has no PIN yet. Choose one of at least {MIN_PIN_LENGTH} characters; the key asks
          for it from now on.
        </>
      }
      label="New PIN"
      repeatLabel="Repeat the PIN"
      validate={(pin) =>
        pin.length < MIN_PIN_LENGTH ? `A PIN has at least ${MIN_PIN_LENGTH} characters.` : null
      }
      mismatch="The two PINs differ. Type them again."
      toAnswer={(pin) => ({ kind: 'newKeyPin', pin })}
      busy={busy}
      error={error}
      answer={answer}
      cancel={cancel}
    />
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
  return <WaitDialog title="Device trust" mark="spinner" message={prompt.message} live />;
}

/**
 * Something the person should know while a ceremony goes on ("retrying on another auth server"). It asks
 * nothing; the ceremony's next prompt replaces it, and its end closes it.
 */
export function NoticeDialog({ prompt }: PromptDialogProps<PromptOf<'notice'>>) {
  const message = prompt.message.charAt(0).toUpperCase() + prompt.message.slice(1);
  return <WaitDialog title="Please wait" mark="spinner" message={`${message}…`} live />;
}

/**
 * An SSO login waits for the person in the browser, at the IdP's sign-in page. Nothing to answer here;
 * Cancel (or Escape) ends the login: the app stops waiting for the browser, and nothing is saved.
 */
export function BrowserSignInDialog({ prompt, cancel, error }: PromptDialogProps<PromptOf<'browserSignIn'>>) {
  return (
    <WaitDialog
      title={`Sign in with ${prompt.connector}`}
      mark="spinner"
      message={`Continue in your browser: sign in with ${prompt.connector} on the page that opened. Keyport Connect signs you in to ${prompt.cluster} once you have.`}
      hint="Did no browser open, or did you close it? Cancel and try again."
      cancel={{ cancel, error }}
      live
    />
  );
}
