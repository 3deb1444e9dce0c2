/**
 * Commands the engine accepts and events it emits.
 *
 * Units: every amount is an integer count of an asset's minor units (satoshis, cents…).
 * A price is the number of quote minor units for one whole base unit. All are numbers
 * that the engine keeps within the safe-integer range (checked on entry).
 */

export type Side = 'buy' | 'sell';
export type OrderType =
  | 'limit'
  | 'market'
  | 'stop_limit'
  | 'stop_market'
  | 'take_profit'
  | 'take_profit_limit'
  | 'trailing_stop';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'DAY' | 'GTD';
export type StpMode = 'cancel_taker' | 'cancel_maker' | 'cancel_both' | 'decrement';
export type MarketState = 'trading' | 'halted' | 'cancel_only' | 'post_only';
export type Restriction = 'none' | 'buy_only' | 'sell_only' | 'no_trading';
export type OrderStatus = 'NEW' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELLED' | 'REJECTED' | 'EXPIRED' | 'PENDING_TRIGGER';

/** Account ids of the exchange's own books. User accounts are positive integers. */
export const EXTERNAL_ACCOUNT = -1;
export const FEE_ACCOUNT = -2;

/** Order sides as the engine stores them. */
export const BUY = 0;
export const SELL = 1;

export const PPM = 1_000_000;
export const BPS = 10_000;
/** The longest a dead man's switch may be set for: a day. */
export const MAX_CANCEL_AFTER_MS = 86_400_000;

export interface FeeTier {
  /** 30-day traded volume of the user in this market, quote minor units. */
  minVolume: number;
  makerFeePpm: number;
  takerFeePpm: number;
}

export interface CreateAsset { type: 'create_asset'; code: string; precision: number; minFee?: number }
export interface CreateMarket {
  type: 'create_market';
  market: string;
  base: string;
  quote: string;
  /** Price step, quote minor units per whole base unit. */
  tick: number;
  /** Quantity step, base minor units. */
  lot: number;
  minQuantity?: number;
  maxQuantity?: number;
  minNotional?: number;
  maxNotional?: number;
  makerFeePpm?: number;
  takerFeePpm?: number;
  state?: MarketState;
  /** Limit prices must lie within [last × low, last × high], in basis points (0 = no band). */
  bandLowBps?: number;
  bandHighBps?: number;
  /** Most orders one account may have open (working or waiting for a trigger) here; 0 = no limit. */
  maxOpenOrders?: number;
  /**
   * How far from the last price a market order may trade, in basis points (0 = no collar): a
   * market buy takes nothing above last × (1 + collar), a sell nothing below last × (1 − collar);
   * the rest expires with reason PRICE_COLLAR. Protects a market order from a thin book.
   */
  collarBps?: number;
}
export interface SetMarketState { type: 'set_market_state'; market: string; state: MarketState }
export interface SetFees { type: 'set_fees'; market: string; makerFeePpm: number; takerFeePpm: number; tiers?: FeeTier[] }
export interface SetOpenOrderLimit { type: 'set_open_order_limit'; market: string; maxOpenOrders: number }
/** Changes a market's order limits and price band (those given); resting orders stay, the rules apply to what comes next. */
export interface SetMarketLimits {
  type: 'set_market_limits'; market: string;
  minQuantity?: number; maxQuantity?: number; minNotional?: number; maxNotional?: number; bandLowBps?: number; bandHighBps?: number;
  collarBps?: number;
}
/** One asset's books across the exchange (minor units): users' balances, collected fees, deposits less withdrawals. */
export interface AssetTotals { asset: string; available: bigint; reserved: bigint; locked: bigint; fees: bigint; netInflow: bigint }
/** What an account's user pays in a market now, and the 30-day volume (quote minor units) that tiers count. */
export interface AccountFeeRates { market: string; makerFeePpm: number; takerFeePpm: number; volume30d: number }
export interface SetFeeLevel { type: 'set_fee_level'; level: number; makerFeePpm: number; takerFeePpm: number }
export interface CreateUser { type: 'create_user'; user: number; level?: number }
export interface SetUserLevel { type: 'set_user_level'; user: number; level: number }
export interface CreateAccount { type: 'create_account'; account: number; user: number }
export interface SetRestriction { type: 'set_restriction'; account: number; restriction: Restriction }
/** Credit from the outside world. `key` makes it apply at most once. */
export interface Deposit { type: 'deposit'; account: number; asset: string; amount: number; key: string }
/**
 * Takes funds out of an account's available balance to the outside world: the operator's
 * correction of a credit made in error. `key` makes it apply at most once.
 */
export interface Debit { type: 'debit'; account: number; asset: string; amount: number; key: string }
/** Moves available → locked for a withdrawal; `hold` names the hold. */
export interface LockFunds { type: 'lock_funds'; account: number; asset: string; amount: number; hold: string }
/** Returns a hold's funds to available (failed or cancelled withdrawal). */
export interface UnlockFunds { type: 'unlock_funds'; hold: string }
/**
 * Sends a hold's funds to the outside world (completed withdrawal); `fee` of them (default 0)
 * goes to the fee account instead.
 */
export interface SettleFunds { type: 'settle_funds'; hold: string; fee?: number }
export interface Transfer { type: 'transfer'; from: number; to: number; asset: string; amount: number; key: string }
/** Moves collected fees out of the fee account to a user account (the operator's), once per key. */
export interface CollectFees { type: 'collect_fees'; to: number; asset: string; amount: number; key: string }
export interface PlaceOrder {
  type: 'place_order';
  account: number;
  market: string;
  side: Side;
  orderType: OrderType;
  timeInForce?: TimeInForce;
  price?: number;
  quantity?: number;
  /** Market orders (and conditional market buys): spend / receive this much quote. */
  quoteQuantity?: number;
  stopPrice?: number;
  /** Trailing stop distance from the extreme price, basis points (100 = 1 %). */
  callbackBps?: number;
  postOnly?: boolean;
  stp?: StpMode;
  clientOrderId?: string;
  /** GTD expiry, epoch milliseconds. */
  expireTime?: number;
}
export interface CancelOrder { type: 'cancel_order'; account: number; orderId?: number; clientOrderId?: string }
/**
 * Cancels the account's open orders (in one market, or all). `cause: 'disconnect'` marks a
 * cancel-on-disconnect: the gateway sends it when a socket that asked for one closes, and the
 * orders end with reason DISCONNECT rather than USER; `cause: 'operator'` marks an operator's
 * cancel (reason OPERATOR).
 */
export interface CancelAll { type: 'cancel_all'; account: number; market?: string; cause?: 'disconnect' | 'operator' }
/**
 * The dead man's switch: unless set again within `timeoutMs` (1 ms to MAX_CANCEL_AFTER_MS), every
 * open order of the account is cancelled (reason CANCEL_AFTER) once a command's time reaches the
 * deadline. 0 disarms it; firing disarms it too.
 */
export interface SetCancelAfter { type: 'set_cancel_after'; account: number; timeoutMs: number }
export interface CancelMarket { type: 'cancel_market'; market: string }
export interface AmendOrder {
  type: 'amend_order';
  account: number;
  orderId?: number;
  clientOrderId?: string;
  /** New total quantity (filled part included). */
  quantity?: number;
  price?: number;
}
/** Carries only time forward: expiries happen. */
export interface Tick { type: 'tick' }
/**
 * Moves the engine to a newer version of its matching rules (RULES_VERSION). A rule that changes
 * how commands play out is versioned, so that a journal replays as it was played: the commands
 * before this one under the rules then in force. The server journals one at start when it plays
 * newer rules than its journal's.
 */
export interface AdoptRules { type: 'adopt_rules'; version: number }

export type Command =
  | CreateAsset | CreateMarket | SetMarketState | SetFees | SetOpenOrderLimit | SetMarketLimits | SetFeeLevel
  | CreateUser | SetUserLevel | CreateAccount | SetRestriction
  | Deposit | Debit | LockFunds | UnlockFunds | SettleFunds | Transfer | CollectFees
  | PlaceOrder | CancelOrder | CancelAll | CancelMarket | AmendOrder | SetCancelAfter | Tick | AdoptRules;

export interface Envelope {
  /** Journal sequence number; also the id of an order this command places. */
  seq: number;
  /** Epoch milliseconds, stamped by the sequencer; never decreases. */
  ts: number;
  cmd: Command;
}

export type RejectReason =
  | 'INVALID_COMMAND'
  | 'OUT_OF_RANGE'
  | 'ALREADY_EXISTS'
  | 'DUPLICATE_KEY'
  | 'UNKNOWN_ASSET'
  | 'UNKNOWN_MARKET'
  | 'UNKNOWN_USER'
  | 'UNKNOWN_ACCOUNT'
  | 'UNKNOWN_ORDER'
  | 'UNKNOWN_HOLD'
  | 'INSUFFICIENT_BALANCE'
  | 'TICK_SIZE'
  | 'LOT_SIZE'
  | 'QUANTITY_TOO_SMALL'
  | 'QUANTITY_TOO_LARGE'
  | 'NOTIONAL_TOO_SMALL'
  | 'NOTIONAL_TOO_LARGE'
  | 'PRICE_BELOW_BAND'
  | 'PRICE_ABOVE_BAND'
  | 'POST_ONLY_WOULD_TAKE'
  | 'FOK_CANNOT_FILL'
  | 'MARKET_HALTED'
  | 'MARKET_CANCEL_ONLY'
  | 'MARKET_POST_ONLY'
  | 'DIRECTION_RESTRICTED'
  | 'DUPLICATE_CLIENT_ORDER_ID'
  | 'TOO_MANY_OPEN_ORDERS'
  | 'INVALID_EXPIRE_TIME'
  | 'ORDER_NOT_AMENDABLE';

export type CancelReason =
  | 'USER'
  | 'OPERATOR'
  | 'SELF_TRADE'
  | 'POST_ONLY_WOULD_TAKE'
  | 'FOK_CANNOT_FILL'
  | 'INSUFFICIENT_BALANCE'
  /** The account's dead man's switch (set_cancel_after) ran out. */
  | 'CANCEL_AFTER'
  /** A socket that asked for cancel-on-disconnect closed. */
  | 'DISCONNECT';

/** Why an order ended without filling: its time in force ran out. */
export type ExpireReason = 'IOC' | 'NO_LIQUIDITY' | 'EXPIRE_TIME' | 'PRICE_COLLAR';

export interface OrderView {
  orderId: number;
  account: number;
  market: string;
  side: Side;
  orderType: OrderType;
  timeInForce: TimeInForce;
  price: number | null;
  quantity: number | null;
  quoteQuantity: number | null;
  stopPrice: number | null;
  callbackBps: number | null;
  postOnly: boolean;
  stp: StpMode;
  clientOrderId: string | null;
  expireTime: number | null;
  status: OrderStatus;
}

/** An open order with its progress. */
export interface OrderState extends OrderView {
  filledQuantity: number;
  leavesQuantity: number;
  cumQuote: number;
  avgPrice: number;
}

/** The accepted order, as it stands after entry. */
export interface OrderAcceptedEvent extends OrderView { type: 'order_accepted' }
export interface OrderRejectedEvent {
  type: 'order_rejected';
  orderId: number;
  account: number;
  market: string;
  clientOrderId: string | null;
  reason: RejectReason;
  /** The rule's detail in the engine's terms (minor units, command field names); the reason if none. */
  message: string;
}
export interface OrderTriggeredEvent { type: 'order_triggered'; orderId: number; account: number; market: string; lastPrice: number }
export interface OrderFillEvent {
  type: 'order_fill';
  orderId: number;
  account: number;
  market: string;
  side: Side;
  tradeId: number;
  price: number;
  quantity: number;
  quoteQuantity: number;
  fee: number;
  feeAsset: string;
  liquidity: 'maker' | 'taker';
  cumQuantity: number;
  /** Unfilled quantity still working; 0 for orders sized in quote. */
  leavesQuantity: number;
  cumQuote: number;
  avgPrice: number;
  status: 'PARTIALLY_FILLED' | 'FILLED';
}
export interface TradeEvent {
  type: 'trade';
  tradeId: number;
  market: string;
  price: number;
  quantity: number;
  quoteQuantity: number;
  takerSide: Side;
  takerOrderId: number;
  makerOrderId: number;
  takerAccount: number;
  makerAccount: number;
  takerFee: number;
  makerFee: number;
  /** Fee of the buyer, in base; of the seller, in quote. */
  buyerFee: number;
  sellerFee: number;
}
export interface OrderEndedEvent {
  type: 'order_cancelled' | 'order_expired';
  orderId: number;
  account: number;
  market: string;
  reason: CancelReason | ExpireReason;
  cancelledQuantity: number;
  cumQuantity: number;
  cumQuote: number;
  avgPrice: number;
}
export interface OrderAmendedEvent {
  type: 'order_amended';
  orderId: number;
  account: number;
  market: string;
  price: number;
  quantity: number;
  leavesQuantity: number;
  priorityKept: boolean;
}
/** set_cancel_after: the account's deadline (epoch ms), or null when disarmed. */
export interface CancelAfterSetEvent { type: 'cancel_after_set'; account: number; triggerTime: number | null }
/** The account's dead man's switch fired at `triggerTime`; its cancellations follow. */
export interface CancelAfterTriggeredEvent { type: 'cancel_after_triggered'; account: number; triggerTime: number }
export interface RulesAdoptedEvent { type: 'rules_adopted'; version: number }
export interface BalanceEvent { type: 'balance'; account: number; asset: string; available: number; reserved: number; locked: number }
export interface CommandRejectedEvent { type: 'command_rejected'; command: Command['type']; reason: RejectReason; message: string }
export interface AssetCreatedEvent { type: 'asset_created'; code: string; precision: number; minFee: number }
export interface MarketUpdatedEvent { type: 'market_created' | 'market_updated'; market: MarketView }
export interface FeeLevelSetEvent { type: 'fee_level_set'; level: number; makerFeePpm: number; takerFeePpm: number }
export interface UserEvent { type: 'user_created' | 'user_updated'; user: number; level: number }
export interface AccountEvent { type: 'account_created' | 'account_updated'; account: number; user: number; restriction: Restriction }
export interface FundsMovedEvent {
  type: 'deposited' | 'debited' | 'funds_locked' | 'funds_unlocked' | 'funds_settled' | 'transferred';
  account: number;
  /** Counterparty: the external account, or the destination of a transfer. */
  counterparty: number;
  asset: string;
  amount: number;
  key: string;
  /** funds_settled: the part of amount that went to the fee account. */
  fee?: number;
}

export type EngineEvent =
  | OrderAcceptedEvent | OrderRejectedEvent | OrderTriggeredEvent | OrderFillEvent | TradeEvent
  | OrderEndedEvent | OrderAmendedEvent | BalanceEvent | CommandRejectedEvent | AssetCreatedEvent
  | MarketUpdatedEvent | FeeLevelSetEvent | UserEvent | AccountEvent | FundsMovedEvent
  | CancelAfterSetEvent | CancelAfterTriggeredEvent | RulesAdoptedEvent;

export interface MarketView {
  market: string;
  base: string;
  quote: string;
  tick: number;
  lot: number;
  minQuantity: number;
  maxQuantity: number;
  minNotional: number;
  maxNotional: number;
  makerFeePpm: number;
  takerFeePpm: number;
  tiers: FeeTier[];
  state: MarketState;
  bandLowBps: number;
  bandHighBps: number;
  maxOpenOrders: number;
  collarBps: number;
  lastPrice: number | null;
}

export interface BalanceView { asset: string; available: number; reserved: number; locked: number }

export interface BookLevelView { price: number; quantity: number; orders: number }
export interface BookView { market: string; bids: BookLevelView[]; asks: BookLevelView[] }
/**
 * An order resting in a book. `priority` is the sequence number of the command that last queued
 * it: it changes exactly when the order loses its place (an amendment up, or to a new price).
 */
export interface RestingOrderView { orderId: number; market: string; side: Side; price: number; quantity: number; priority: number }
export interface OrderBookView { market: string; bids: RestingOrderView[]; asks: RestingOrderView[] }

/**
 * Every user's holdings (available + reserved + locked over all their accounts) at one seq: user
 * `users[i]` holds `sums[i * assets + k]` minor units of the k-th asset asked for. Doubles hold
 * them exactly: no sum can pass an asset's total supply, which deposits keep within 2^53.
 */
export interface UserHoldings { seq: number; users: Float64Array; sums: Float64Array }
