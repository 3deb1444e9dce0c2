/**
 * An account's open orders and balances kept from the native WebSocket, as a bot needs them: it
 * signs in (`auth`), subscribes to `orders`, `balances` and `fills`, starts from the snapshots
 * those channels begin with and applies every later update (each carries a whole order or
 * balance, so the last one is the state). When the connection drops it reconnects with growing
 * pauses and starts again from fresh snapshots; `ready` is false from a loss until both arrive.
 *
 *   const account = new AccountFeed({ url, credentials });
 *   account.on('fill', (fill) => console.log(fill.price, fill.quantity));
 */
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ReconnectingSocket } from './reconnecting-socket.js';
import { BourseApiError, serverClockOffset } from './rest.js';
import type { Credentials } from './rest.js';

export interface AccountFeedOptions {
  url: string;
  credentials: Credentials;
  /** A sub-account to follow instead of the key's own. */
  account?: number;
  /** Cancel the account's open orders if this socket closes (the server does it; see the README). */
  cancelOnDisconnect?: boolean;
  /** This machine's time (Date.now by default); a sign-in refused as stale measures the server's clock against it. */
  clock?: () => number;
  reconnectMs?: number;
  maxReconnectMs?: number;
}

/** An order or balance as the API writes it. */
export type Wire = Record<string, unknown> & { id?: string; status?: string; asset?: string };

const OPEN = new Set(['NEW', 'PARTIALLY_FILLED', 'PENDING_TRIGGER']);

/**
 * Sign-in refusals that another try may get past (beside STALE_REQUEST, after which the clock is
 * measured): a repeated timestamp (the next sign-in signs anew), a lockout or a busy server (the
 * next waits `retry_after`). Any other (an unknown, revoked or expired key, a wrong secret, an
 * address not allowed, a disabled user) will be refused again, and trying a wrong secret again
 * would lock the address out.
 */
const RETRIED_SIGN_IN_REFUSALS: ReadonlySet<string> = new Set(['REPLAYED_REQUEST', 'LOCKED_OUT', 'RATE_LIMITED', 'BANNED', 'OVERLOADED', 'UNAVAILABLE', 'BUSY', 'INTERNAL']);

export class AccountFeed extends EventEmitter {
  ready = false;
  /** The account the server signed this socket in for. */
  account: number | null = null;
  /** False when the account has more open orders than the orders snapshot carries (1,000): list the rest with GET /orders. */
  complete = true;
  /** Why the server refused to sign this feed in for good (event `refused`); the feed has stopped. */
  refusal: BourseApiError | null = null;
  private openOrders = new Map<string, Wire>();
  private balanceByAsset = new Map<string, Wire>();
  private snapshots = new Set<string>();
  private readonly connection: ReconnectingSocket;
  /** Placements and cancels sent and not yet answered, by request id. */
  private readonly pending = new Map<number, { resolve: (order: Wire) => void; reject: (error: Error) => void }>();
  private nextRequest = 1;
  /** The request id of the sign-in awaiting its answer. */
  private signInRequest = 0;
  /** Server time minus `clock`'s, as last measured (after a sign-in refused as stale). */
  clockOffsetMs = 0;

  constructor(private readonly options: AccountFeedOptions) {
    super();
    this.connection = new ReconnectingSocket(options.url, options, {
      open: () => this.signIn(),
      message: (message) => this.receive(message),
      lost: () => {
        this.ready = false;
        this.snapshots.clear();
        // Whether a request the server never answered was carried out is unknown: look it up by its client order id.
        for (const request of this.pending.values()) request.reject(new BourseApiError(0, 'DISCONNECTED', 'the connection was lost before the answer; look the order up by its client order id'));
        this.pending.clear();
        this.emit('resync', 'connection lost');
      },
      problem: (error) => this.emit('connection-error', error),
    });
  }

  /** Open orders by id. */
  orders(): Map<string, Wire> {
    return new Map(this.openOrders);
  }

  /** Balances by asset. */
  balances(): Map<string, Wire> {
    return new Map(this.balanceByAsset);
  }

  close(): void {
    this.connection.close();
  }

  /** Places an order over the socket (the body of POST /api/v1/orders); resolves with the order as placed. */
  place(order: Record<string, unknown>): Promise<Wire> {
    return this.request({ op: 'place', order });
  }

  /** Cancels an open order by its id, or by its client order id; resolves with the order as cancelled. */
  cancel(which: { orderId: string } | { clientOrderId: string }): Promise<Wire> {
    return this.request('orderId' in which ? { op: 'cancel', order_id: which.orderId } : { op: 'cancel', client_order_id: which.clientOrderId });
  }

  /** Errors come as BourseApiError with the REST code; status 0, since the socket has none. */
  private request(message: Record<string, unknown>): Promise<Wire> {
    if (this.refusal !== null) return Promise.reject(this.refusal);
    if (!this.ready) return Promise.reject(new BourseApiError(0, 'NOT_READY', 'the feed is not signed in yet'));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.connection.send({ ...message, id });
    });
  }

  private signIn(): void {
    const timestamp = String(this.now() + this.clockOffsetMs);
    const { key, secret } = this.options.credentials;
    this.signInRequest = this.nextRequest++;
    this.connection.send({
      op: 'auth', id: this.signInRequest, key, timestamp, signature: createHmac('sha256', secret).update(`${timestamp}GET/ws`).digest('hex'),
      ...(this.options.cancelOnDisconnect === true ? { cancel_on_disconnect: true } : {}),
      ...(this.options.account === undefined ? {} : { account: this.options.account }),
    });
  }

  private receive(message: Record<string, unknown>): void {
    if (message.id === this.signInRequest && message.event === 'error') return this.signInRefused(message.error as { code: string; message: string; retry_after?: number });
    if (message.event === 'authenticated') {
      this.account = message.account as number;
      for (const channel of ['orders', 'balances', 'fills']) this.connection.send({ op: 'subscribe', channel });
      return;
    }
    const request = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
    if (request !== undefined) {
      this.pending.delete(message.id as number);
      const error = message.error as { code: string; message: string } | undefined;
      if (message.event === 'error') request.reject(new BourseApiError(0, error?.code ?? 'ERROR', error?.message ?? 'refused'));
      else request.resolve(message.order as Wire);
      return;
    }
    if (message.event === 'error') {
      this.emit('server-error', message.error);
      return;
    }
    // Other answers ('subscribed' carries the channel's name too) are not pushes.
    if (message.event !== undefined) return;
    if (message.channel === 'orders') {
      if (message.type === 'snapshot') {
        this.openOrders = new Map((message.orders as Wire[]).map((o) => [o.id!, o]));
        this.complete = message.complete as boolean;
        this.snapshotArrived('orders');
      } else {
        const order = message.order as Wire;
        if (OPEN.has(order.status!)) this.openOrders.set(order.id!, order);
        else this.openOrders.delete(order.id!);
        this.emit('order', order);
      }
    } else if (message.channel === 'balances') {
      if (message.type === 'snapshot') {
        this.balanceByAsset = new Map((message.balances as Wire[]).map((b) => [b.asset!, b]));
        this.snapshotArrived('balances');
      } else {
        const balance = message.balance as Wire;
        this.balanceByAsset.set(balance.asset!, balance);
        this.emit('balance', balance);
      }
    } else if (message.channel === 'fills') {
      this.emit('fill', message.fill);
    }
  }

  private now(): number {
    return (this.options.clock ?? Date.now)();
  }

  private signInRefused(error: { code: string; message: string; retry_after?: number }): void {
    this.emit('server-error', error);
    if (error.code === 'STALE_REQUEST') {
      // The next sign-in, on a new connection, carries the measured offset.
      serverClockOffset(this.options.url, () => this.now())
        .then((offset) => { this.clockOffsetMs = offset; }, (problem: unknown) => this.emit('connection-error', problem))
        .finally(() => this.connection.drop());
      return;
    }
    if (RETRIED_SIGN_IN_REFUSALS.has(error.code)) {
      this.connection.drop((error.retry_after ?? 0) * 1000);
      return;
    }
    this.refusal = new BourseApiError(0, error.code, error.message, error.retry_after);
    this.connection.close();
    this.emit('refused', this.refusal);
  }

  private snapshotArrived(channel: string): void {
    this.snapshots.add(channel);
    if (this.snapshots.has('orders') && this.snapshots.has('balances') && !this.ready) {
      this.ready = true;
      this.emit('ready');
    }
  }
}
