/**
 * A client for the native API (import from 'bourse/client'): signed REST with the server's clock,
 * a local book and the account's open orders and balances kept from the WebSocket. It imports
 * nothing of the server.
 */
export { BourseApiError, RestClient, serverClockOffset } from './rest.js';
export type { Credentials, RequestBudget, RestClientOptions } from './rest.js';
export { BookFeed, bookChecksum, compareDecimals } from './book-feed.js';
export type { BookEntry, BookFeedOptions, BookKind } from './book-feed.js';
export { AccountFeed } from './account-feed.js';
export type { AccountFeedOptions, Wire } from './account-feed.js';
