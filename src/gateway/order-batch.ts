/**
 * Orders in batches: a market maker requoting a ladder sends one signed request for up to
 * MAX_BATCH placements (POST /orders/batch) or cancels (POST /orders/cancel-batch). A batch is
 * not atomic: each order is its own command, carried out or refused on its own, and the answer
 * gives each one's outcome in the order sent. They are submitted together, in that order, so that
 * they share a journal commit; each weighs on the rate limits as much as if it were sent alone.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Exchange } from '../exchange.js';
import { actingAccount } from './account-scope.js';
import { ApiError, errorBody, serviceRefusal, throwIfRejected } from './errors.js';
import { cancelByClientIdFor, cancelOrderFor } from './order-cancels.js';
import { ORDER_BODY, orderCommand } from './orders.js';
import type { OrderBody } from './orders.js';
import type { Gateway } from './server.js';
import { ACCOUNT_ID, CLIENT_ORDER_ID, ORDER_OUT, placedOrderOut, STRING } from './wire.js';
import type { OrderWire } from './wire.js';

const MAX_BATCH = 20;

/** Each order's outcome: the order as it stands, or why it was refused. */
const OUTCOME_OUT = {
  type: 'object',
  properties: { ...ORDER_OUT.properties, error: { type: 'object', properties: { code: STRING, message: STRING } } },
} as const;
const BATCH_OUT = { type: 'object', properties: { orders: { type: 'array', items: OUTCOME_OUT } } } as const;
const ORDER_ID = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;

type Outcome = OrderWire | ReturnType<typeof errorBody>;

/** A refusal becomes that order's outcome; anything else is a fault, and fails the request as it would any other. */
async function outcomes(work: Promise<OrderWire>[]): Promise<Outcome[]> {
  const settled = await Promise.allSettled(work);
  return settled.map((result) => {
    if (result.status === 'fulfilled') return result.value;
    const refusal = result.reason instanceof ApiError ? result.reason : serviceRefusal(result.reason);
    if (refusal === null) throw result.reason;
    return errorBody(refusal.code, refusal.message);
  });
}

export function registerOrderBatchRoutes(app: FastifyInstance, exchange: Exchange, gateway: Gateway): void {
  const trade = gateway.authenticate('trade');
  /** The route's weight paid for the first order; the rest are charged before any is carried out. */
  const chargeTheRest = (request: FastifyRequest, reply: FastifyReply, count: number): void => {
    if (count > 1) gateway.chargeSubjects(gateway.addressOf(request.raw), request.apiKey!.key, count - 1, { request, reply });
  };

  app.post<{ Body: { orders: OrderBody[] } }>('/orders/batch', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['orders'],
        properties: { orders: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: ORDER_BODY } },
      },
      response: { 200: BATCH_OUT },
    },
    preValidation: trade, config: { weight: 1 },
  }, async (request, reply) => {
    const key = request.apiKey!;
    const { orders } = request.body;
    chargeTheRest(request, reply, orders.length);
    gateway.chargeOrders(key, orders.length);
    // Each submit happens before the first await of its function: all of them in this turn, in order.
    return {
      orders: await outcomes(orders.map(async (order) => {
        const cmd = orderCommand(exchange.engine, actingAccount(exchange, key, order.account), order);
        const ack = await exchange.submit(cmd);
        throwIfRejected(ack.events, exchange.engine, cmd);
        const placed = placedOrderOut(exchange, ack.seq, ack.events, ack.ts);
        if (placed === undefined) throw new Error(`order ${ack.seq} was accepted without an order_accepted event`);
        return placed;
      })),
    };
  });

  app.post<{ Body: { order_ids?: string[]; client_order_ids?: string[]; account?: number } }>('/orders/cancel-batch', {
    schema: {
      body: {
        type: 'object', additionalProperties: false,
        properties: {
          order_ids: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: ORDER_ID },
          client_order_ids: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: CLIENT_ORDER_ID, description: "client order ids of one account: the key's, or `account`" },
          account: ACCOUNT_ID,
        },
      },
      response: { 200: BATCH_OUT },
    },
    preValidation: trade, config: { weight: 1 },
  }, async (request, reply) => {
    const key = request.apiKey!;
    const { order_ids: ids, client_order_ids: clientIds } = request.body;
    if ((ids === undefined) === (clientIds === undefined)) {
      throw new ApiError(400, 'INVALID_REQUEST', 'give order_ids or client_order_ids, one of the two');
    }
    const account = actingAccount(exchange, key, request.body.account);
    chargeTheRest(request, reply, (ids ?? clientIds)!.length);
    const work = ids !== undefined
      ? ids.map((id) => cancelOrderFor(exchange, key, Number(id), account))
      : clientIds!.map((clientOrderId) => cancelByClientIdFor(exchange, account, clientOrderId));
    return { orders: await outcomes(work) };
  });
}
