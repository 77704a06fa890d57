// The cluster resource model: schemas and types, parsing and printing, presets and policy helpers.
export * from './errors';
export * from './schema';
export * from './parse';
export * from './presets';
export * from './private-key-policy';
export * from './oidc';
export * from './claims-mapping';
export { parseGoDurationSeconds } from './duration';
export { expandTraitValue, parseTraitValue } from './traits';
export type { ParsedTraitValue, TraitTemplate } from './traits';
