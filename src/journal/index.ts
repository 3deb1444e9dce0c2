export * from './sqlite-journal.js';
export * from './recovery.js';
export * from './sequencer.js';
export type { ForwardStart, ReplicaSnapshot } from './journal-sink.js';
export * from './folder-lock.js';
export * from './make-folder.js';
