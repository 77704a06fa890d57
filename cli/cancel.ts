// Ctrl-C during a ceremony. The first one cancels it: a question waiting for an answer is given up, a
// security key sees CTAPHID CANCEL, and the ceremony unwinds with CANCELLED, taking back the session key it
// wrote. A second one exits at once, but not before the session keys of logins in progress are taken back
// (bounded: a keychain that does not answer does not keep the person waiting).
import { KeyportError } from '../proto/errors';
import { abandonLogins } from '../client/ceremonies/login';
import { EXIT } from './exit-codes';
import type { Prompter } from './prompts';

const TAKE_BACK_BOUND_MS = 2_000;

export interface Cancellation {
  signal: AbortSignal;
  /** Rejects with CANCELLED at the first Ctrl-C. */
  cancelled: Promise<never>;
  /** The same questions, given up at the first Ctrl-C. */
  prompter(prompter: Prompter): Prompter;
  /** `waiting`, given up at the first Ctrl-C. */
  unlessCancelled<T>(waiting: Promise<T>): Promise<T>;
  /** Stops listening for Ctrl-C (a second one then ends the process as Node does by default). */
  dispose(): void;
}

export function cancelOnCtrlC(message = 'Cancelled.'): Cancellation {
  const controller = new AbortController();
  const cancelled = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(new KeyportError('CANCELLED', message)));
  });
  cancelled.catch(() => {});
  const onInterrupt = () => {
    controller.abort();
    process.once('SIGINT', () => void exitNow());
  };
  process.once('SIGINT', onInterrupt);
  const unlessCancelled = <T>(waiting: Promise<T>): Promise<T> => Promise.race([waiting, cancelled]);
  return {
    signal: controller.signal,
    cancelled,
    unlessCancelled,
    prompter: (prompter) => ({
      say: (line) => prompter.say(line),
      secret: (question) => unlessCancelled(prompter.secret(question)),
      text: (question) => unlessCancelled(prompter.text(question)),
      confirm: (question) => unlessCancelled(prompter.confirm(question)),
    }),
    dispose: () => process.off('SIGINT', onInterrupt),
  };
}

/** The second Ctrl-C: out, once the keys of logins in progress are taken back (or after 2 s). */
async function exitNow(): Promise<never> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    abandonLogins(),
    new Promise((resolve) => (timer = setTimeout(resolve, TAKE_BACK_BOUND_MS))),
  ]);
  clearTimeout(timer);
  process.exit(EXIT.cancelled);
}
