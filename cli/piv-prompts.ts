// How the terminal asks for a PIV card (hardware-key sessions): "Tap your YubiKey", "Enter your PIV PIN"
// (with the attempts left after a wrong one), and a new PIN and PUK for a card still on the factory ones.
import { KeyportError } from '../proto/errors';
import type { PivUnblockPrompts } from '../client/hardware/piv/pin';
import type { PivSetupPrompts } from '../client/hardware/piv/session-key';
import type { Prompter } from './prompts';

async function newSecret(prompter: Prompter, what: 'PIN' | 'PUK'): Promise<string> {
  const first = await prompter.secret(`Enter a new PIV ${what} (6 to 8 characters):`);
  if (process.stdin.isTTY && first !== (await prompter.secret(`Confirm the new PIV ${what}:`))) {
    throw new KeyportError('INVALID_ARGUMENT', `The ${what}s do not match; nothing was changed on the card.`);
  }
  return first;
}

export function pivPrompts(prompter: Prompter): PivSetupPrompts {
  return {
    touch: (message) => prompter.say(message),
    reinsert: (message) => prompter.say(message),
    pin: (retriesLeft) =>
      prompter.secret(
        retriesLeft === undefined
          ? 'Enter your PIV PIN:'
          : `Enter your PIV PIN (${retriesLeft} ${retriesLeft === 1 ? 'attempt' : 'attempts'} left):`,
      ),
    newPin: () => newSecret(prompter, 'PIN'),
    newPuk: () => newSecret(prompter, 'PUK'),
    notice: (message) => prompter.say(message),
  };
}

export function pivUnblockPrompts(prompter: Prompter): PivUnblockPrompts {
  return {
    puk: () => prompter.secret('Enter the PUK of your PIV card:'),
    newPin: () => newSecret(prompter, 'PIN'),
    notice: (message) => prompter.say(message),
  };
}
