// The soft key's CTAPHID framing, driven over its socket by a raw client written from the spec.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from 'cbor2';
import { BROADCAST, CMD, RawCtaphid } from './raw-client.test-support';
import { startSoftKey } from './soft-key';
import type { SoftKey } from './soft-key';

const ERR = {
  INVALID_CMD: 0x01,
  INVALID_LEN: 0x03,
  INVALID_SEQ: 0x04,
  CHANNEL_BUSY: 0x06,
  INVALID_CHANNEL: 0x0b,
};
const CTAP2_ERR_INVALID_CBOR = 0x12;
const CTAP2_ERR_KEEPALIVE_CANCEL = 0x2d;
const CTAP2_ERR_OPERATION_DENIED = 0x27;
const CTAP2_ERR_USER_ACTION_TIMEOUT = 0x2f;

let dir: string;
let key: SoftKey;
let client: RawCtaphid;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ksk-'));
  key = await startSoftKey({
    socketPath: join(dir, 'k.sock'),
    statePath: join(dir, 'state.json'),
    touch: 'manual',
  });
  client = await RawCtaphid.connect(key.socketPath);
});

afterAll(async () => {
  client?.close();
  await key?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function makeCredentialParams(): Map<number, unknown> {
  return new Map<number, unknown>([
    [1, randomBytes(32)],
    [2, new Map([['id', 'localhost']])],
    [3, new Map<string, unknown>([['id', Buffer.from('u1')]])],
    [
      4,
      [
        new Map<string, unknown>([
          ['alg', -7],
          ['type', 'public-key'],
        ]),
      ],
    ],
  ]);
}

describe('CTAPHID framing', () => {
  it('allocates a new channel on INIT and echoes the 8-byte nonce in a 17-byte answer', async () => {
    const nonce = randomBytes(8);
    client.send(BROADCAST, CMD.INIT, nonce);
    const m = await client.receive();
    expect(m.cid).toBe(BROADCAST);
    expect(m.cmd).toBe(CMD.INIT);
    expect(m.payload.length).toBe(17);
    expect(Buffer.from(m.payload.subarray(0, 8))).toEqual(nonce);
    const cid = Buffer.from(m.payload).readUInt32BE(8);
    expect(cid).not.toBe(0);
    expect(cid).not.toBe(BROADCAST);
    expect(m.payload[12]).toBe(2); // CTAPHID protocol version
    expect(m.payload[16]! & 0x04).toBe(0x04); // CAPABILITY_CBOR
    expect(await client.init()).not.toBe(cid);
  });

  it('echoes a PING that spans several packets', async () => {
    const cid = await client.init();
    const data = randomBytes(300);
    client.send(cid, CMD.PING, data);
    const m = await client.receive();
    expect(m).toMatchObject({ cid, cmd: CMD.PING });
    expect(Buffer.from(m.payload)).toEqual(data);
  });

  it('refuses commands on a channel it never allocated, and non-INIT commands on broadcast', async () => {
    client.send(0x01020304, CMD.PING, Buffer.from('hi'));
    expect(await client.receive()).toMatchObject({
      cid: 0x01020304,
      cmd: CMD.ERROR,
      payload: Uint8Array.of(ERR.INVALID_CHANNEL),
    });
    client.send(BROADCAST, CMD.PING, Buffer.from('hi'));
    expect(await client.receive()).toMatchObject({
      cmd: CMD.ERROR,
      payload: Uint8Array.of(ERR.INVALID_CHANNEL),
    });
  });

  it('answers INVALID_LEN, INVALID_SEQ and INVALID_CMD', async () => {
    const cid = await client.init();
    client.send(cid, CMD.PING, Buffer.alloc(10), 7610);
    expect(await client.receive()).toMatchObject({
      cid,
      cmd: CMD.ERROR,
      payload: Uint8Array.of(ERR.INVALID_LEN),
    });

    client.send(BROADCAST, CMD.INIT, randomBytes(7));
    expect(await client.receive()).toMatchObject({ cmd: CMD.ERROR, payload: Uint8Array.of(ERR.INVALID_LEN) });

    // A 100-byte PING needs continuation 0; send continuation 1 instead.
    const first = Buffer.alloc(64);
    first.writeUInt32BE(cid, 0);
    first[4] = 0x80 | CMD.PING;
    first.writeUInt16BE(100, 5);
    client.writeReport(first);
    const cont = Buffer.alloc(64);
    cont.writeUInt32BE(cid, 0);
    cont[4] = 1;
    client.writeReport(cont);
    expect(await client.receive()).toMatchObject({
      cid,
      cmd: CMD.ERROR,
      payload: Uint8Array.of(ERR.INVALID_SEQ),
    });

    client.send(cid, 0x33, Buffer.alloc(0));
    expect(await client.receive()).toMatchObject({
      cid,
      cmd: CMD.ERROR,
      payload: Uint8Array.of(ERR.INVALID_CMD),
    });
  });

  it('rejects non-canonical CBOR with CTAP2_ERR_INVALID_CBOR', async () => {
    const cid = await client.init();
    // makeCredential with its keys out of order (2 before 1), encoded by hand without sorting.
    const unsorted = encode(
      new Map<number, unknown>([
        [2, new Map([['id', 'localhost']])],
        [1, new Uint8Array(32)],
      ]),
    );
    client.send(cid, CMD.CBOR, Uint8Array.of(0x01, ...unsorted));
    expect((await client.receiveCbor(cid)).status).toBe(CTAP2_ERR_INVALID_CBOR);
    // getInfo parameters with a non-shortest integer (0x18 0x01 instead of 0x01).
    client.send(cid, CMD.CBOR, Uint8Array.of(0x06, 0xa1, 0x18, 0x01, 0x02));
    expect((await client.receiveCbor(cid)).status).toBe(CTAP2_ERR_INVALID_CBOR);
  });
});

describe('presence, KEEPALIVE, CANCEL, CHANNEL_BUSY', { timeout: 120_000 }, () => {
  it('sends KEEPALIVE up-needed while waiting, answers CHANNEL_BUSY to another channel, and CANCEL ends the wait', async () => {
    const busyChannel = await client.init();
    const other = await client.init();
    const upNeeded = new Promise((r) => key.events.once('up-needed', r));
    const cancelled = new Promise((r) => key.events.once('cancelled', r));
    client.keepalives.length = 0;
    client.sendCbor(busyChannel, 0x01, makeCredentialParams());
    await upNeeded;

    client.send(other, CMD.PING, Buffer.from('x'));
    expect(await client.receive()).toMatchObject({
      cid: other,
      cmd: CMD.ERROR,
      payload: Uint8Array.of(ERR.CHANNEL_BUSY),
    });

    // Two KEEPALIVEs have arrived before the CANCEL: waited for, not guessed with a sleep.
    for (const deadline = Date.now() + 20_000; client.keepalives.length < 2 && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 20));
    client.send(busyChannel, CMD.CANCEL, new Uint8Array());
    const response = await client.receiveCbor(busyChannel);
    expect(response.status).toBe(CTAP2_ERR_KEEPALIVE_CANCEL);
    await cancelled;
    expect(client.keepalives.length).toBeGreaterThanOrEqual(2);
    expect(client.keepalives).toContain(2); // STATUS_UPNEEDED
  });

  it('maps deny and timeout from the control channel to OPERATION_DENIED and USER_ACTION_TIMEOUT', async () => {
    const cid = await client.init();
    const control = connect(key.controlPath);
    const lines = createInterface({ input: control });
    const received: Record<string, unknown>[] = [];
    const next = async (pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
      for (;;) {
        const found = received.find(pred);
        if (found) {
          received.splice(received.indexOf(found), 1);
          return found;
        }
        await new Promise((r) => lines.once('line', r));
      }
    };
    lines.on('line', (l) => received.push(JSON.parse(l) as Record<string, unknown>));
    await new Promise((r) => control.once('connect', r));

    for (const [decision, status] of [
      ['deny', CTAP2_ERR_OPERATION_DENIED],
      ['timeout', CTAP2_ERR_USER_ACTION_TIMEOUT],
    ] as const) {
      client.sendCbor(cid, 0x01, makeCredentialParams());
      await next((m) => m.event === 'up-needed');
      control.write(`${JSON.stringify({ touch: decision })}\n`);
      expect(await next((m) => m.reply === 'touch')).toEqual({ reply: 'touch', ok: true });
      expect((await client.receiveCbor(cid)).status).toBe(status);
    }
    control.write('{"touch":"approve"}\n');
    expect(await next((m) => m.reply === 'touch')).toMatchObject({ ok: false });
    control.destroy();
  });
});

describe('keyport-lab security-key', () => {
  it('starts from the command line, serves INIT, and exits on SIGTERM leaving no socket', async () => {
    const socketPath = join(dir, 'cli.sock');
    const child = spawn(
      process.execPath,
      [
        resolve(import.meta.dirname, '../../bin/keyport-lab.mjs'),
        'security-key',
        '--socket',
        socketPath,
        '--state',
        join(dir, 'cli-state.json'),
        '--touch',
        'auto',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const ready = await new Promise<Record<string, unknown>>((resolveLine, reject) => {
        createInterface({ input: child.stdout }).once('line', (l) => resolveLine(JSON.parse(l)));
        child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
      });
      expect(ready).toMatchObject({ event: 'ready', socket: socketPath });
      const c = await RawCtaphid.connect(socketPath);
      expect(await c.init()).toBeGreaterThan(0);
      c.close();
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    expect(() => rmSync(socketPath)).toThrow(/ENOENT/);
  });
});
