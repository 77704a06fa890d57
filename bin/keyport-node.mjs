#!/usr/bin/env node
// keyport-node, sshd's AuthorizedPrincipalsCommand on a node (node/main.ts). sshd runs it twice per
// connection, so it runs the esbuild bundle (dist/node/keyport-node.mjs, `node build-node.mjs`: ≈ 0.2 s to
// start, not ≈ 0.65 s under tsx). Where the bundle is missing or older than a source (node-bundle.mjs, the
// list build-node.mjs uses too), it runs the sources under tsx instead (never stale code), and says so on
// stderr (sshd's log).
import { pathToFileURL } from 'node:url';
import { bundleIsStale, bundlePath } from '../node-bundle.mjs';

if (!bundleIsStale()) {
  await import(pathToFileURL(bundlePath()).href);
} else {
  process.stderr.write(
    'keyport-node: dist/node is missing or stale (node build-node.mjs); running the sources\n',
  );
  const { register } = await import('tsx/esm/api');
  register();
  await import('../node/main.ts');
}
