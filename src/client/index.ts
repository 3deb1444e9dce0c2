/**
 * A client for the native API (import from 'bourse/client'): signed REST with the server's clock,
 * and a local book kept from the WebSocket. It imports nothing of the server.
 */
export { BourseApiError, RestClient } from './rest.js';
export type { Credentials, RestClientOptions } from './rest.js';
export { BookFeed, bookChecksum, compareDecimals } from './book-feed.js';
export type { BookEntry, BookFeedOptions, BookKind } from './book-feed.js';
