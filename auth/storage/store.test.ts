import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from './store';
import type { Store } from './store';

let dir: string;
let store: Store;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyport-store-'));
  store = await openSqliteStore(dir);
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

// SQLite only: the file in the data dir. Every store method runs on both databases in conformance.test.ts.
describe('SQLite store', () => {
  it('migrates an existing database again without harm and keeps its data private', async () => {
    await store.insertUser('alice', '{"roles":["access"]}', 1);
    await store.close();
    store = await openSqliteStore(dir);
    expect((await store.getUser('alice'))?.name).toBe('alice');
    expect((await stat(join(dir, 'keyport.db'))).mode & 0o077).toBe(0);
  });
});
