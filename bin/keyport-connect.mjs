#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx keyport-connect …` works in a checkout after
// `npm install` (and `node build-app.mjs` for the app's files).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../main/browser/keyport-connect.ts');
process.exitCode = await main(process.argv.slice(2));
