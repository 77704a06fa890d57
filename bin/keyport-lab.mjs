#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx keyport-lab …` works in a checkout after `npm install`.
import { register } from 'tsx/esm/api';

register();
await import('../lab/security-key/cli.ts');
