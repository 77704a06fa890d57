#!/usr/bin/env node
// keyport-node, sshd's AuthorizedPrincipalsCommand on a node (node/main.ts), run from the sources (tsx).
import { register } from 'tsx/esm/api';

register();
await import('../node/main.ts');
