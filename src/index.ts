export * from './money/index.js';
export * from './core/index.js';
export * from './journal/index.js';
