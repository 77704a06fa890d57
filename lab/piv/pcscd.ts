// pcscd inside the lab's namespace, and what it says about the lab reader. Run with --info, pcscd logs
// "Card inserted into READER" (after it powered the card and published the slot's state) and "Card Removed
// From READER" as its polling thread (every 400 ms) sees them. Those lines are how the launcher knows
// that clients see the card come or go: events on the card's side (vpcd's presence poll also reads the
// ATR) come before pcscd has decided, and a card put back within one poll is never seen to leave.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { PrivateNamespace } from './namespace';
import { endChild } from './namespace';

export const PCSCD_START_TIMEOUT_MS = 20_000;

export interface LabPcscd {
  child: ChildProcess;
  /** Whether this pcscd has said the card is in the lab reader (it starts with none). */
  readonly cardPresent: boolean;
  /** Resolves once this pcscd's last word on the lab reader is "card in" (true) or "card out" (false). */
  until(present: boolean): Promise<void>;
  stop(): Promise<void>;
}

export async function startPcscd(options: {
  namespace: PrivateNamespace;
  socketPath: string;
  readerName: string;
  record: (chunk: string) => void;
  output: () => string;
}): Promise<LabPcscd> {
  const child = options.namespace.spawn('pcscd', ['--foreground', '--info'], {
    cwd: '/',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let cardPresent = false;
  const waiters: Array<{ present: boolean; resolve: () => void }> = [];
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    options.record(chunk);
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes(`Card inserted into ${options.readerName}`)) cardPresent = true;
      else if (line.includes(`Card Removed From ${options.readerName}`)) cardPresent = false;
      else continue;
      for (const waiter of waiters.filter((w) => w.present === cardPresent)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => options.record(chunk.toString()));

  const deadline = Date.now() + PCSCD_START_TIMEOUT_MS;
  while (!existsSync(options.socketPath)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await endChild(child);
      throw new Error(
        `pcscd did not create ${options.socketPath} (Debian: pcscd, vsmartcard-vpcd)\n${options.output()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }

  return {
    child,
    get cardPresent() {
      return cardPresent;
    },
    until(present) {
      if (cardPresent === present) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const index = waiters.indexOf(waiter);
          if (index >= 0) waiters.splice(index, 1);
          const what = present ? 'come in' : 'go';
          reject(
            new Error(
              `pcscd did not see the card ${what} within ${PCSCD_START_TIMEOUT_MS} ms\n${options.output()}`,
            ),
          );
        }, PCSCD_START_TIMEOUT_MS);
        const waiter = {
          present,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        waiters.push(waiter);
      });
    },
    stop: () => endChild(child),
  };
}
