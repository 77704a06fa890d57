// Shows the backend's open prompt (Teleport Connect's ModalsHost): one dialog at a time, the latest open
// prompt, gone as soon as the backend closes it. Answers and cancels go back through window.keyport.
import { useState } from 'react';
import type { ComponentType } from 'react';
import type { ContractError, Prompt, PromptAnswer } from '../../../../preload/contract';
import { useKeyport } from '../../services/KeyportContext';
import { usePrompts } from '../../services/prompts';
import {
  BrowserSignInDialog,
  ChooseKeyDialog,
  DeviceNameDialog,
  KeyPinDialog,
  NewKeyPinDialog,
  NoticeDialog,
  OtpCodeDialog,
  ProgressDialog,
  TapKeyDialog,
  TrustCaPinDialog,
} from './PromptDialogs';
import type { PromptDialogProps } from './PromptFrames';
import { NewPivPinDialog, PivPinDialog, PivTouchDialog } from './PivDialogs';
import { ReloginDialog } from '../Relogin/ReloginDialog';

const dialogs: { [K in Prompt['kind']]: ComponentType<PromptDialogProps<Extract<Prompt, { kind: K }>>> } = {
  tapKey: TapKeyDialog,
  keyPin: KeyPinDialog,
  newKeyPin: NewKeyPinDialog,
  otpCode: OtpCodeDialog,
  chooseKey: ChooseKeyDialog,
  trustCaPin: TrustCaPinDialog,
  deviceName: DeviceNameDialog,
  progress: ProgressDialog,
  notice: NoticeDialog,
  browserSignIn: BrowserSignInDialog,
  relogin: ReloginDialog,
  pivTouch: PivTouchDialog,
  pivPin: PivPinDialog,
  newPivPin: NewPivPinDialog,
};

export function PromptsHost() {
  const prompts = usePrompts(useKeyport());
  const { current } = prompts;
  if (!current) return null;
  // Keyed by id: every prompt opens a fresh dialog, with empty fields and focus on its first one.
  return <PromptDialog key={current.id} prompt={current} prompts={prompts} />;
}

function PromptDialog({ prompt, prompts }: { prompt: Prompt; prompts: ReturnType<typeof usePrompts> }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ContractError | null>(null);

  async function answer(value: PromptAnswer) {
    if (busy) return;
    setBusy(true);
    setError(null);
    const result = await prompts.answer(prompt.id, value);
    setBusy(false);
    if (!result.ok) setError(result.error);
  }

  function cancel() {
    void prompts.cancel(prompt.id);
  }

  const Component = dialogs[prompt.kind] as ComponentType<PromptDialogProps>;
  return <Component prompt={prompt} busy={busy} error={error} answer={answer} cancel={cancel} />;
}
