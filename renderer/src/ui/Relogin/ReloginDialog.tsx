// "Sign in again" (issue 13): a dialog over whatever is on screen, so an open terminal tab or a half-filled
// form stays as it was underneath, and the action that was refused runs again once the person has signed
// in. It says why (the session's end, the cluster now requiring a hardware key, the CLI asking), shows the
// cluster and user it signs in as (read only: a relogin renews this session, it does not switch users), and
// offers the login screen's factors: the password with a choice of second factor where the cluster has
// both, passwordless where the cluster allows it, only "Continue" where passwordless is its way, and only
// "Sign in with DISPLAY" for a session signed in through an SSO connector (the IdP's page opens in the
// browser next). What is typed leaves with the answer and is not kept.
import { useId, useState } from 'react';
import type { Prompt, PromptAnswer, ReloginCause } from '../../../../preload/contract';
import { Dialog } from '../components/Dialog';
import { SecondFactorChoice } from '../components/SecondFactorChoice';
import type { SecondFactor } from '../components/SecondFactorChoice';
import { DialogFooter, FieldError } from '../Prompts/PromptFrames';
import type { PromptDialogProps } from '../Prompts/PromptFrames';

type ReloginPrompt = Extract<Prompt, { kind: 'relogin' }>;

/** The line above the backend's reason, where the reason alone would not say what changed. */
const HEADLINES: Partial<Record<ReloginCause, string>> = {
  keyPolicy: 'This cluster now requires a hardware key.',
  deviceTrust: 'This cluster now requires a trusted device.',
};

/** What happens next, by cause. */
function nextStep(cause: ReloginCause): string {
  switch (cause) {
    case 'keyPolicy':
      return 'Sign in again to make your session key on your hardware key (a YubiKey): keep it plugged in. Then Keyport Connect finishes what you asked.';
    case 'cli':
      return 'Sign in here, and the keyport command in your terminal goes on with the new session.';
    case 'endsSoon':
      return 'Sign in again now to renew your session; what is open stays open.';
    default:
      return 'Sign in again to go on: what you were doing stays open, and Keyport Connect finishes what you asked.';
  }
}

function ReloginExplained({ prompt }: { prompt: ReloginPrompt }) {
  const headline = HEADLINES[prompt.cause];
  return (
    <>
      <div className="relogin-reason">
        {headline && <p>{headline}</p>}
        {prompt.reason.map((line) => (
          <p key={line}>{line}</p>
        ))}
      </div>
      <dl className="facts relogin-facts">
        <dt>Cluster</dt>
        <dd>{prompt.cluster}</dd>
        <dt>User</dt>
        <dd>{prompt.user}</dd>
      </dl>
      <p className="dialog-message">{nextStep(prompt.cause)}</p>
    </>
  );
}

export function ReloginDialog(props: PromptDialogProps<ReloginPrompt>) {
  const { prompt, busy, error, answer, cancel } = props;
  if (prompt.sso) return <ReloginSso {...props} sso={prompt.sso} />;
  if (!prompt.passwordless) return <ReloginPasswordForm {...props} />;
  return (
    <Dialog title="Sign in again" onCancel={cancel} busy={busy}>
      <ReloginExplained prompt={prompt} />
      <p className="hint">Your security key signs you in: no password is needed.</p>
      <DialogFooter error={error} cancel={cancel}>
        <button
          type="button"
          className="button button-primary"
          disabled={busy}
          onClick={() => answer({ kind: 'relogin' })}
        >
          Continue
        </button>
      </DialogFooter>
    </Dialog>
  );
}

function ReloginSso({
  prompt,
  busy,
  error,
  answer,
  cancel,
  sso,
}: PromptDialogProps<ReloginPrompt> & { sso: NonNullable<ReloginPrompt['sso']> }) {
  return (
    <Dialog title="Sign in again" onCancel={cancel} busy={busy}>
      <ReloginExplained prompt={prompt} />
      <p className="hint">
        You signed in with {sso.display}: its sign-in page opens in your browser. Sign in there as{' '}
        {prompt.user}.
      </p>
      <DialogFooter error={error} cancel={cancel}>
        <button
          type="button"
          className="button button-primary"
          disabled={busy}
          onClick={() => answer({ kind: 'relogin', sso: true })}
        >
          Sign in with {sso.display}
        </button>
      </DialogFooter>
    </Dialog>
  );
}

function ReloginPasswordForm({ prompt, busy, error, answer, cancel }: PromptDialogProps<ReloginPrompt>) {
  const [password, setPassword] = useState('');
  const [factor, setFactor] = useState<SecondFactor>('key');
  const [problem, setProblem] = useState<string | null>(null);
  const ids = { password: useId(), problem: useId() };
  const offersChoice = prompt.secondFactors.includes('otp') && prompt.secondFactors.includes('webauthn');

  function submit() {
    if (password.length === 0) return setProblem('Enter your password.');
    setProblem(null);
    const value: PromptAnswer = offersChoice
      ? { kind: 'relogin', password, secondFactor: factor }
      : { kind: 'relogin', password };
    answer(value);
  }

  return (
    <Dialog title="Sign in again" onCancel={cancel} busy={busy}>
      <form
        className="dialog-form"
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          if (!busy) submit();
        }}
      >
        <ReloginExplained prompt={prompt} />
        <label htmlFor={ids.password}>Password</label>
        <input
          id={ids.password}
          type="password"
          autoComplete="current-password"
          maxLength={1024}
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          aria-invalid={problem ? true : undefined}
          aria-describedby={problem ? ids.problem : undefined}
        />
        <FieldError id={ids.problem} message={problem} />
        {offersChoice && (
          <SecondFactorChoice name="relogin-second-factor" value={factor} onChange={setFactor} />
        )}
        <DialogFooter error={error} cancel={cancel}>
          <button type="submit" className="button button-primary" disabled={busy}>
            Sign in
          </button>
          {prompt.allowPasswordless && (
            <button
              type="button"
              className="button"
              disabled={busy}
              onClick={() => answer({ kind: 'relogin' })}
            >
              Sign in without a password
            </button>
          )}
        </DialogFooter>
      </form>
    </Dialog>
  );
}
