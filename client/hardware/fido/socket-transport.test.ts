import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CTAPHID_CMD, CtaphidError, fragmentMessage } from './ctaphid';
import { SocketHidTransport } from './socket-transport';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

async function serve(onConnection: (socket: Socket) => void): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-fido-'));
  const path = join(dir, 'key.sock');
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  cleanups.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return path;
}

describe('SocketHidTransport', () => {
  it('writes one 64-byte report per write and re-cuts the stream into 64-byte reports', async () => {
    const received: Buffer[] = [];
    const reports = fragmentMessage(0x01020304, CTAPHID_CMD.CBOR, new Uint8Array(150).fill(7));
    const path = await serve((socket) => {
      socket.on('data', (chunk) => received.push(chunk));
      // Two and a bit reports in the first chunk, the rest later: the reader must not care.
      const stream = Buffer.concat(reports);
      socket.write(stream.subarray(0, 130));
      setTimeout(() => socket.write(stream.subarray(130)), 10);
    });
    const transport = await SocketHidTransport.connect(path);
    await transport.write(reports[0]!);
    for (const report of reports) expect(await transport.read()).toEqual(report);
    expect(Buffer.concat(received)).toEqual(Buffer.from(reports[0]!));
    await expect(transport.write(new Uint8Array(65))).rejects.toBeInstanceOf(CtaphidError);
    await transport.close();
  });

  it('rejects a pending read when aborted and when the key goes away', async () => {
    let peer: Socket | undefined;
    const path = await serve((socket) => (peer = socket));
    const transport = await SocketHidTransport.connect(path);
    const controller = new AbortController();
    const aborted = transport.read(controller.signal);
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    const pending = transport.read();
    await new Promise((resolve) => setTimeout(resolve, 10));
    peer?.destroy();
    await expect(pending).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED' });
  });

  it('reports a missing socket as TRANSPORT_CLOSED', async () => {
    await expect(SocketHidTransport.connect('/nonexistent/keyport.sock')).rejects.toMatchObject({
      code: 'TRANSPORT_CLOSED',
    });
  });
});
