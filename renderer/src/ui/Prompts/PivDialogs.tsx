// The hardware-key prompts (the seed "Hardware Key Support"): "Tap your YubiKey", the PIV PIN, and a new
// PIN and PUK for a card still on the factory ones (signing in again is ../Relogin/ReloginDialog.tsx). As
// every dialog, each answers with exactly the value its kind expects; what is typed leaves with the answer
// and is not kept.
import type { Prompt } from '../../../../preload/contract';
import { attemptsLeft } from '../../services/errors';
import { NewSecretPrompt, TextFieldPrompt, WaitDialog } from './PromptFrames';
import type { PromptDialogProps } from './PromptFrames';

type PromptOf<K extends Prompt['kind']> = Extract<Prompt, { kind: K }>;

export function PivTouchDialog({ prompt, cancel, error }: PromptDialogProps<PromptOf<'pivTouch'>>) {
  return (
    <WaitDialog
      title="Hardware key"
      mark="key-pulse"
      message={prompt.message}
      live
      hint="Touch the contact of your YubiKey while it blinks."
      cancel={{ cancel, error }}
    />
  );
}

const PIV_PIN_LENGTH = { min: 6, max: 8 };

function pivSecretProblem(value: string, what: 'PIN' | 'PUK'): string | null {
  if (value.length < PIV_PIN_LENGTH.min || value.length > PIV_PIN_LENGTH.max) {
    return `A PIV ${what} has ${PIV_PIN_LENGTH.min} to ${PIV_PIN_LENGTH.max} characters.`;
  }
  return null;
}

export function PivPinDialog({ prompt, busy, error, answer, cancel }: PromptDialogProps<PromptOf<'pivPin'>>) {
  const { retriesLeft } = prompt;
  return (
    <TextFieldPrompt
      title="PIV PIN"
      message="Enter the PIV PIN of your YubiKey."
      label="PIV PIN"
      submitLabel="Continue"
      input={{ type: 'password', autoComplete: 'off', maxLength: PIV_PIN_LENGTH.max }}
      hint={
        retriesLeft === undefined
          ? undefined
          : `Wrong PIN. ${attemptsLeft(retriesLeft)} before the card blocks its PIN.`
      }
      validate={(pin) => pivSecretProblem(pin, 'PIN')}
      toAnswer={(pin) => ({ kind: 'pivPin', pin })}
      busy={busy}
      error={error}
      answer={answer}
      cancel={cancel}
    />
  );
}

/** The factory values every PIV card ships with: anyone knows them. */
const FACTORY = { pin: '123456', puk: '12345678' } as const;

export function NewPivPinDialog({
  prompt,
  busy,
  error,
  answer,
  cancel,
}: PromptDialogProps<PromptOf<'newPivPin'>>) {
  const what = prompt.secret === 'pin' ? 'PIN' : 'PUK';
  return (
    <NewSecretPrompt
      title={`Set a PIV ${what}`}
      submitLabel={`Set ${what}`}
      message={
        prompt.secret === 'pin'
          ? 'Your PIV card still has its default PIN, which anyone knows. Choose a PIN of 6 to 8 characters: the card asks for it from now on.'
          : 'Your PIV card still has its default PUK. Choose a PUK of 6 to 8 characters: it unblocks the PIN after too many wrong ones. Keep it somewhere safe.'
      }
      label={`New ${what}`}
      repeatLabel={`Repeat the ${what}`}
      maxLength={PIV_PIN_LENGTH.max}
      validate={(value) =>
        pivSecretProblem(value, what) ??
        (value === FACTORY[prompt.secret] ? `Choose a ${what} other than the default ${value}.` : null)
      }
      mismatch={`The two ${what}s differ. Type them again.`}
      toAnswer={(value) => ({ kind: 'newPivPin', value })}
      busy={busy}
      error={error}
      answer={answer}
      cancel={cancel}
    />
  );
}
