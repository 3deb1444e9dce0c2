export { Engine, RULES_VERSION } from './engine.js';
export type { Market } from './state.js';
export type { FeeLevel, Hold } from './engine.js';
export { findViolations, findTradeViolations, invariantCheckDue } from './invariants.js';
export { encodeSnapshot, SNAPSHOT_VERSION } from './snapshot.js';
export { MARKET_STATES, RESTRICTIONS } from './validate.js';
export type { EngineSnapshot } from './snapshot.js';
export * from './types.js';
