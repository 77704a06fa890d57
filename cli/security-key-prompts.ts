// How the terminal asks for a security key: the tap line, the PIN (with attempts left), a new PIN.
import type { SecurityKeyPrompts } from '../client/webauthn';
import type { Prompter } from './prompts';

export function securityKeyPrompts(prompter: Prompter): SecurityKeyPrompts {
  return {
    tap: (message) => prompter.say(message),
    pin: (retriesLeft) =>
      prompter.secret(
        `Enter the PIN of your security key${retriesLeft !== undefined ? ` (${retriesLeft} attempts left)` : ''}:`,
      ),
    newPin: () => prompter.secret('Your security key has no PIN yet. Enter a new PIN for your security key:'),
    notice: (message) => prompter.say(message),
  };
}
