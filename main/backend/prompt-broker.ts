// Prompts from ceremonies to the person. A ceremony asks through a CeremonyPrompts object (it implements
// the client core's TrustPrompt, LoginPrompts and SecurityKeyPrompts); the broker shows one important
// prompt at a time and queues the rest, as Teleport Connect serialises its important modals. Cancelling a
// prompt rejects it with CANCELLED and aborts the ceremony's signal, which sends CTAPHID CANCEL to a key.
import { KeyportError } from '../../proto/errors';
import type { DevicePrompts } from '../../client/ceremonies/devices';
import type { LoginPrompts } from '../../client/ceremonies/login';
import type { PivSetupPrompts } from '../../client/hardware/piv/session-key';
import type { SecurityKeyPrompts } from '../../client/webauthn';
import type { Prompt, PromptAnswer, PromptBody, PromptClosed, ReloginCause } from '../../preload/contract';
import type { SecondFactorKind } from '../../preload/contract';

export interface PromptEvents {
  prompt(prompt: Prompt): void;
  closed(closed: PromptClosed): void;
}

interface Entry {
  prompt: Prompt;
  ceremony: Ceremony;
  /** Undefined for prompts with nothing to answer (tapKey, progress, notice, browserSignIn). */
  settle?: { resolve(answer: PromptAnswer): void; reject(error: unknown): void };
}

interface Ceremony {
  controller: AbortController;
  finished: boolean;
  /** What the next tap prompt says instead of the key's generic line ("Tap your new security key"). */
  tapHint?: string;
}

export interface CeremonyPrompts extends LoginPrompts, DevicePrompts {
  /** The name of a device just registered (mfa.add without a name). */
  deviceName(): Promise<string>;
  securityKey: SecurityKeyPrompts;
  /** The PIV card: "Tap your YubiKey", its PIN (with the attempts left), a new PIN and PUK. */
  piv: PivSetupPrompts;
  /**
   * Asks the person to sign in again because a call was refused for a reason a relogin resolves (`reason`:
   * why, e.g. the seed's two lines for a raised key policy), with the login screen's factors. Resolves with
   * the password and the second factor chosen, or no password: passwordless (the cluster's default, or
   * chosen where it allows it).
   */
  relogin(request: {
    cluster: string;
    user: string;
    reason: string[];
    cause: ReloginCause;
    passwordless: boolean;
    secondFactors: SecondFactorKind[];
    allowPasswordless: boolean;
    sso?: { connector: string; display: string };
  }): Promise<{ password?: string; secondFactor?: 'auto' | 'otp' | 'key'; sso?: true }>;
  /** Says something that asks nothing (a notice prompt), until the ceremony's next prompt or its end. */
  notice(message: string): void;
  /**
   * An SSO login waits for the browser (a browserSignIn prompt: nothing to answer, Cancel aborts `signal`),
   * until the ceremony's next prompt or its end.
   */
  browserSignIn(request: { cluster: string; connector: string }): void;
  /** Shows that hardware is working (a progress prompt, nothing to answer) until `progressDone`. */
  progress(message: string): void;
  progressDone(): void;
  /** Aborted when the person cancels any prompt of this ceremony. */
  signal: AbortSignal;
  /** Closes what this ceremony still shows or queued; call when it ends, however it ends. */
  finish(): void;
}

/**
 * A relogin's answer offers only what its prompt offered: a password cluster needs the password unless it
 * allows passwordless; a passwordless one is never sent one; a second factor goes with a password only.
 */
function reloginAnswerFits(
  prompt: Extract<PromptBody, { kind: 'relogin' }>,
  answer: Extract<PromptAnswer, { kind: 'relogin' }>,
): void {
  const refuse = (message: string, field: string) =>
    new KeyportError('INVALID_ARGUMENT', message, { fieldPath: `value.${field}` });
  // An SSO session signs in again through its connector only: no password, no second factor of Keyport's.
  if (prompt.sso) {
    if (answer.sso !== true) throw refuse(`Sign in with ${prompt.sso.display}.`, 'sso');
    if (answer.password !== undefined)
      throw refuse('No password is asked: sign in with your IdP.', 'password');
    if (answer.secondFactor !== undefined) throw refuse('No second factor is asked here.', 'secondFactor');
    return;
  }
  if (answer.sso !== undefined) throw refuse('This session does not sign in with single sign-on.', 'sso');
  if (prompt.passwordless && answer.password !== undefined) {
    throw refuse('No password is asked: just continue.', 'password');
  }
  if (answer.password === undefined && !prompt.passwordless && !prompt.allowPasswordless) {
    throw refuse('Give the password.', 'password');
  }
  if (answer.secondFactor !== undefined && answer.password === undefined) {
    throw refuse('A second factor goes with a password.', 'secondFactor');
  }
}

function cancelled(): KeyportError {
  return new KeyportError('CANCELLED', 'Cancelled. Nothing was changed.');
}

export class PromptBroker {
  private open: Entry | undefined;
  private readonly queue: Entry[] = [];
  private nextId = 1;

  /** A question nobody answers ends its ceremony after this long, so it cannot block the queue forever. */
  private readonly answerTimeoutMs: number;

  constructor(
    private readonly events: PromptEvents,
    options: { answerTimeoutMs?: number } = {},
  ) {
    this.answerTimeoutMs = options.answerTimeoutMs ?? 5 * 60_000;
  }

  /** The prompt on screen, if any. */
  current(): Prompt | undefined {
    return this.open?.prompt;
  }

  /** Prompts for one ceremony (a login, adding a key). */
  ceremony(): CeremonyPrompts {
    const ceremony: Ceremony = { controller: new AbortController(), finished: false };
    const ask = <K extends PromptAnswer['kind']>(body: PromptBody & { kind: K }) =>
      this.ask(ceremony, body) as Promise<Extract<PromptAnswer, { kind: K }>>;
    const securityKey: SecurityKeyPrompts = {
      tap: (message) => {
        const hint = ceremony.tapHint;
        ceremony.tapHint = undefined;
        this.show(ceremony, { kind: 'tapKey', message: hint ?? message });
      },
      pin: async (retriesLeft) =>
        (await ask(retriesLeft === undefined ? { kind: 'keyPin' } : { kind: 'keyPin', retriesLeft })).pin,
      newPin: async () => (await ask({ kind: 'newKeyPin' })).pin,
      chooseAccount: async (accounts) => (await ask({ kind: 'chooseKey', accounts })).index,
    };
    const piv: PivSetupPrompts = {
      // Shown until the ceremony's next prompt or its end (a signature's touch ends with its call).
      touch: (message) => this.show(ceremony, { kind: 'pivTouch', message }),
      pin: async (retriesLeft) =>
        (await ask(retriesLeft === undefined ? { kind: 'pivPin' } : { kind: 'pivPin', retriesLeft })).pin,
      // The new-PIN dialog says why itself (the card still has its factory PIN): no notice before it.
      newPin: async () => (await ask({ kind: 'newPivPin', secret: 'pin' })).value,
      newPuk: async () => (await ask({ kind: 'newPivPin', secret: 'puk' })).value,
    };
    return {
      signal: ceremony.controller.signal,
      securityKey,
      piv,
      relogin: async (request) => {
        const { password, secondFactor, sso } = await ask({ kind: 'relogin', ...request });
        if (sso) return { sso };
        return { ...(password === undefined ? {} : { password }), ...(secondFactor ? { secondFactor } : {}) };
      },
      confirmCaPin: async (address, caPin) => (await ask({ kind: 'trustCaPin', address, caPin })).trust,
      otpCode: async () => (await ask({ kind: 'otpCode' })).code.trim(),
      deviceName: async () => (await ask({ kind: 'deviceName' })).name.trim(),
      // The renderer never holds a password it did not type: the backend passes it in (see createBackend).
      password: () => Promise.reject(new KeyportError('INVALID_ARGUMENT', 'Give the password.')),
      showTotpEnrollment: () =>
        Promise.reject(
          new KeyportError('INVALID_ARGUMENT', 'Add OTP devices with the keyport CLI; the app adds keys.'),
        ),
      // A step of the ceremony is done; the next tap prompt (shown only once a key waits for presence)
      // names what to tap.
      say: (line) => {
        this.closeDisplayed(ceremony);
        ceremony.tapHint = line;
      },
      notice: (message) => this.show(ceremony, { kind: 'notice', message }),
      browserSignIn: (request) => this.show(ceremony, { kind: 'browserSignIn', ...request }),
      progress: (message) => this.show(ceremony, { kind: 'progress', message }),
      progressDone: () => this.closeDisplayed(ceremony),
      finish: () => this.finish(ceremony),
    };
  }

  answer(id: string, answer: PromptAnswer): void {
    const entry = this.open;
    if (!entry || entry.prompt.id !== id) throw this.unknownPrompt(id);
    if (!entry.settle || entry.prompt.kind !== answer.kind) {
      throw new KeyportError(
        'INVALID_ARGUMENT',
        `The prompt ${id} asks for ${entry.prompt.kind}, not ${answer.kind}.`,
        { fieldPath: 'value.kind' },
      );
    }
    if (answer.kind === 'relogin' && entry.prompt.kind === 'relogin') reloginAnswerFits(entry.prompt, answer);
    if (answer.kind === 'chooseKey' && entry.prompt.kind === 'chooseKey') {
      if (answer.index >= entry.prompt.accounts.length) {
        throw new KeyportError('INVALID_ARGUMENT', 'Choose one of the accounts shown.', {
          fieldPath: 'value.index',
        });
      }
    }
    this.close(entry, 'answered');
    entry.settle.resolve(answer);
  }

  /** Cancels the prompt, open or queued, and the whole ceremony it belongs to. */
  cancel(id: string): void {
    const entry = this.open?.prompt.id === id ? this.open : this.queue.find((e) => e.prompt.id === id);
    if (!entry) throw this.unknownPrompt(id);
    const { ceremony } = entry;
    ceremony.controller.abort(cancelled());
    for (const other of [...this.queue, ...(this.open ? [this.open] : [])]) {
      if (other.ceremony !== ceremony) continue;
      this.close(other, 'cancelled');
      other.settle?.reject(cancelled());
    }
  }

  /** Nobody answered in time: the whole ceremony ends, as if cancelled, with EXPIRED. */
  private expire(entry: Entry): void {
    const { ceremony } = entry;
    const expired = new KeyportError(
      'EXPIRED',
      'Nobody answered in time, so the request was stopped. Nothing was changed; try again.',
    );
    ceremony.controller.abort(expired);
    for (const other of [...this.queue, ...(this.open ? [this.open] : [])]) {
      if (other.ceremony !== ceremony) continue;
      this.close(other, 'cancelled');
      other.settle?.reject(expired);
    }
  }

  private unknownPrompt(id: string): KeyportError {
    return new KeyportError('INVALID_ARGUMENT', `No prompt ${id} is open; it was answered or closed.`, {
      fieldPath: 'id',
    });
  }

  private ask(ceremony: Ceremony, body: PromptBody): Promise<PromptAnswer> {
    if (ceremony.finished || ceremony.controller.signal.aborted) return Promise.reject(cancelled());
    return new Promise((resolve, reject) => {
      const entry: Entry = { prompt: this.withId(body), ceremony, settle: { resolve, reject } };
      const timer = setTimeout(() => this.expire(entry), this.answerTimeoutMs);
      timer.unref?.();
      entry.settle = {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.enqueue(entry);
    });
  }

  /** A prompt with nothing to answer: replaces the ceremony's previous one, stays until the next step. */
  private show(ceremony: Ceremony, body: PromptBody): void {
    if (ceremony.finished || ceremony.controller.signal.aborted) return;
    this.closeDisplayed(ceremony);
    this.enqueue({ prompt: this.withId(body), ceremony });
  }

  private withId(body: PromptBody): Prompt {
    return { ...body, id: `prompt-${this.nextId++}` };
  }

  private enqueue(entry: Entry): void {
    // A ceremony that asks for something new has moved past its tap prompt.
    if (entry.settle) this.closeDisplayed(entry.ceremony);
    this.queue.push(entry);
    this.showNext();
  }

  private closeDisplayed(ceremony: Ceremony): void {
    for (const entry of [...this.queue, ...(this.open ? [this.open] : [])]) {
      if (entry.ceremony === ceremony && !entry.settle) this.close(entry, 'finished');
    }
  }

  private finish(ceremony: Ceremony): void {
    ceremony.finished = true;
    for (const entry of [...this.queue, ...(this.open ? [this.open] : [])]) {
      if (entry.ceremony !== ceremony) continue;
      this.close(entry, 'finished');
      entry.settle?.reject(cancelled());
    }
  }

  private close(entry: Entry, reason: PromptClosed['reason']): void {
    if (this.open === entry) {
      this.open = undefined;
      this.events.closed({ id: entry.prompt.id, reason });
      this.showNext();
      return;
    }
    const index = this.queue.indexOf(entry);
    if (index >= 0) this.queue.splice(index, 1);
  }

  private showNext(): void {
    if (this.open) return;
    const next = this.queue.shift();
    if (!next) return;
    this.open = next;
    this.events.prompt(next.prompt);
  }
}
