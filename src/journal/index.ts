export * from './sqlite-journal.js';
export * from './recovery.js';
export * from './sequencer.js';
export type { ForwardStart } from './journal-sink.js';
