// Asking the person: @inquirer/prompts on a terminal; on a pipe (scripts, tests) one line of stdin per
// question, in order, so every prompt is scriptable.
import { createInterface } from 'node:readline';
import { KeyportError } from '../proto/errors';

export interface Prompter {
  secret(message: string): Promise<string>;
  text(message: string): Promise<string>;
  confirm(message: string): Promise<boolean>;
  /** Lines meant for the person (instructions, URIs); on stderr so stdout stays parseable. */
  say(line: string): void;
}

class LineReader {
  private readonly lines: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private ended = false;

  constructor(stream: NodeJS.ReadableStream) {
    const rl = createInterface({ input: stream, terminal: false });
    rl.on('line', (line) => {
      if (this.waiting) {
        const resolve = this.waiting;
        this.waiting = undefined;
        resolve(line);
      } else this.lines.push(line);
    });
    rl.on('close', () => {
      this.ended = true;
      this.waiting?.(undefined);
    });
  }

  next(): Promise<string | undefined> {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift());
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.waiting = resolve));
  }
}

let stdinLines: LineReader | undefined;

/** The next line of stdin, for --password-stdin and non-interactive use. */
export async function readStdinLine(what: string): Promise<string> {
  stdinLines ??= new LineReader(process.stdin);
  const line = await stdinLines.next();
  if (line === undefined) {
    throw new KeyportError('INVALID_ARGUMENT', `Expected ${what} on standard input, but it ended.`);
  }
  return line;
}

function cancelled(error: unknown): never {
  if (error instanceof Error && error.name === 'ExitPromptError') {
    throw new KeyportError('CANCELLED', 'Cancelled.');
  }
  throw error;
}

/** Without a terminal the question still goes to stderr, so a log or a driving script sees what is asked. */
function ask(message: string): Promise<string> {
  process.stderr.write(`${message}\n`);
  return readStdinLine(`an answer to "${message}"`);
}

/**
 * @inquirer/prompts is about fifty modules; only a question asked at a terminal needs it, so it loads then
 * (`keyport ssh` and every command that asks nothing start without it).
 */
const inquirer = () => import('@inquirer/prompts');

export function terminalPrompter(): Prompter {
  const interactive = Boolean(process.stdin.isTTY);
  return {
    say: (line) => process.stderr.write(`${line}\n`),
    async secret(message) {
      if (!interactive) return ask(message);
      return (await inquirer()).password({ message, mask: '*' }).catch(cancelled);
    },
    async text(message) {
      if (!interactive) return ask(message);
      return (await inquirer()).input({ message }).catch(cancelled);
    },
    async confirm(message) {
      if (!interactive) return /^y(es)?$/i.test((await ask(`${message} (yes/no)`)).trim());
      return (await inquirer()).confirm({ message, default: false }).catch(cancelled);
    },
  };
}
