import { describe, expect, it } from 'vitest';
import {
  CTAPHID_CAPABILITY,
  CTAPHID_CMD,
  CTAPHID_ERR,
  CtaphidError,
  encodeInitResponse,
  encodeKeepalive,
  fragmentMessage,
  MessageAssembler,
  parsePacket,
} from './ctaphid';
import type { CtaphidMessage } from './ctaphid';
import { CtaphidDevice } from './device';
import type { HidTransport } from './device';

const CID = 0x0badcafe;

/**
 * A transport whose far end is a scripted authenticator: it sees raw 64-byte reports, reassembles
 * them with the authenticator-side assembler and answers with raw reports.
 */
class FakeKey implements HidTransport {
  readonly written: Uint8Array[] = [];
  readonly requests: { message: CtaphidMessage; at: number }[] = [];
  readonly #inbox: Uint8Array[] = [];
  readonly #waiters: ((report: Uint8Array) => void)[] = [];
  readonly #assembler = new MessageAssembler();

  constructor(readonly script: (message: CtaphidMessage, key: FakeKey) => void) {}

  async write(report: Uint8Array): Promise<void> {
    this.written.push(report);
    const message = this.#assembler.push(report);
    if (message) {
      this.requests.push({ message, at: Date.now() });
      this.script(message, this);
    }
  }

  read(signal?: AbortSignal): Promise<Uint8Array> {
    const next = this.#inbox.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve, reject) => {
      const waiter = (report: Uint8Array) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(report);
      };
      const onAbort = () => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  async close(): Promise<void> {}

  send(cid: number, cmd: number, payload: Uint8Array): void {
    for (const report of fragmentMessage(cid, cmd, payload)) {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(report);
      else this.#inbox.push(report);
    }
  }

  commandsSent(): number[] {
    return this.written.map((r) => parsePacket(r)).flatMap((p) => (p.type === 'init' ? [p.cmd] : []));
  }
}

/** Answers INIT by echoing the nonce; hands every other message to `rest`. */
function keyWith(rest: (message: CtaphidMessage, key: FakeKey) => void, nonceOverride?: Uint8Array) {
  return new FakeKey((message, key) => {
    if (message.cmd === CTAPHID_CMD.INIT) {
      const nonce = nonceOverride ?? message.payload;
      key.send(
        message.cid,
        CTAPHID_CMD.INIT,
        encodeInitResponse({ nonce, cid: CID, capabilities: CTAPHID_CAPABILITY.CBOR }),
      );
      return;
    }
    rest(message, key);
  });
}

async function rejection(promise: Promise<unknown>): Promise<CtaphidError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CtaphidError);
    return error as CtaphidError;
  }
  throw new Error('expected a rejection');
}

describe('CtaphidDevice', () => {
  it('opens a channel with INIT on the broadcast channel and an 8-byte nonce', async () => {
    const key = keyWith(() => {});
    const device = await CtaphidDevice.open(key);
    expect(device.info.cid).toBe(CID);
    expect(device.info.cbor).toBe(true);
    const init = key.requests[0]!.message;
    expect(init.cid).toBe(0xffffffff);
    expect(init.payload).toHaveLength(8);
  });

  it('rejects an INIT answer with another nonce', async () => {
    const key = keyWith(() => {}, new Uint8Array(8).fill(0xee));
    expect((await rejection(CtaphidDevice.open(key))).code).toBe('INIT_NONCE_MISMATCH');
  });

  it('reports KEEPALIVE statuses, then returns the response', async () => {
    const key = keyWith((message, k) => {
      k.send(CID, CTAPHID_CMD.KEEPALIVE, encodeKeepalive('processing'));
      k.send(CID, CTAPHID_CMD.KEEPALIVE, encodeKeepalive('user-presence-needed'));
      // Another program's traffic on the same device is skipped.
      k.send(0x12345678, CTAPHID_CMD.CBOR, Uint8Array.of(0x7f));
      k.send(
        CID,
        CTAPHID_CMD.CBOR,
        Uint8Array.from([0x00, ...message.payload, ...new Uint8Array(100).fill(1)]),
      );
    });
    const device = await CtaphidDevice.open(key);
    const statuses: string[] = [];
    const response = await device.cbor(0x04, new Uint8Array(0), { onKeepalive: (s) => statuses.push(s) });
    expect(statuses).toEqual(['processing', 'user-presence-needed']);
    expect(response.subarray(0, 2)).toEqual(Uint8Array.of(0x00, 0x04));
    expect(response).toHaveLength(102);
  });

  it('retries after CHANNEL_BUSY about every 100 ms', async () => {
    let calls = 0;
    const key = keyWith((message, k) => {
      calls += 1;
      if (calls === 1) k.send(CID, CTAPHID_CMD.ERROR, Uint8Array.of(CTAPHID_ERR.CHANNEL_BUSY));
      else k.send(CID, CTAPHID_CMD.CBOR, Uint8Array.of(0x00));
    });
    const device = await CtaphidDevice.open(key);
    expect(await device.cbor(0x04, new Uint8Array(0))).toEqual(Uint8Array.of(0x00));
    const cbor = key.requests.filter((r) => r.message.cmd === CTAPHID_CMD.CBOR);
    expect(cbor).toHaveLength(2);
    expect(cbor[1]!.at - cbor[0]!.at).toBeGreaterThanOrEqual(90);
  });

  it('sends CANCEL when the signal aborts and rejects with CANCELLED', async () => {
    const key = keyWith((message, k) => {
      if (message.cmd === CTAPHID_CMD.CBOR)
        k.send(CID, CTAPHID_CMD.KEEPALIVE, encodeKeepalive('user-presence-needed'));
      // CTAP 2.1 §11.2.9.1.5: the pending request is answered with CTAP2_ERR_KEEPALIVE_CANCEL.
      if (message.cmd === CTAPHID_CMD.CANCEL) k.send(CID, CTAPHID_CMD.CBOR, Uint8Array.of(0x2d));
      if (message.cmd === CTAPHID_CMD.PING) k.send(CID, CTAPHID_CMD.PING, message.payload);
    });
    const device = await CtaphidDevice.open(key);
    const controller = new AbortController();
    const error = await rejection(
      device.cbor(0x02, Uint8Array.of(0xa0), {
        signal: controller.signal,
        onKeepalive: (status) => status === 'user-presence-needed' && controller.abort(),
      }),
    );
    expect(error.code).toBe('CANCELLED');
    expect(key.commandsSent()).toEqual([CTAPHID_CMD.INIT, CTAPHID_CMD.CBOR, CTAPHID_CMD.CANCEL]);
    // The cancelled request's answer was consumed: the next transaction gets its own answer.
    expect(await device.ping(Uint8Array.of(1, 2, 3))).toEqual(Uint8Array.of(1, 2, 3));
  });

  it('does not send anything for a signal that is already aborted', async () => {
    const key = keyWith(() => {});
    const device = await CtaphidDevice.open(key);
    const error = await rejection(device.cbor(0x04, new Uint8Array(0), { signal: AbortSignal.abort() }));
    expect(error.code).toBe('CANCELLED');
    expect(key.commandsSent()).toEqual([CTAPHID_CMD.INIT]);
  });

  it('times out, sending CANCEL, when the key never answers', async () => {
    const key = keyWith(() => {});
    const device = await CtaphidDevice.open(key, { cancelGraceMs: 20 });
    const error = await rejection(device.cbor(0x04, new Uint8Array(0), { timeoutMs: 50 }));
    expect(error.code).toBe('TIMEOUT');
    expect(key.commandsSent().at(-1)).toBe(CTAPHID_CMD.CANCEL);
  });

  it('surfaces CTAPHID errors other than CHANNEL_BUSY as typed device errors', async () => {
    const key = keyWith((_m, k) => k.send(CID, CTAPHID_CMD.ERROR, Uint8Array.of(CTAPHID_ERR.INVALID_CMD)));
    const device = await CtaphidDevice.open(key);
    const error = await rejection(device.cbor(0x04, new Uint8Array(0)));
    expect(error.code).toBe('INVALID_COMMAND');
    expect(error.details.source).toBe('device');
  });
});
