/**
 * What `bourse start --config FILE` accepts: every section and setting by name and type. A file
 * with anything else is refused at start, naming each problem, so that a misspelt setting (a
 * rate limit, `trustProxy`, `adminAllow`) cannot silently leave its default in force.
 */
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { NETWORKS, TAG_KINDS } from './funding/chains/addresses.js';
import { RAILS } from './funding/fiat.js';

const integer = (minimum: number, maximum?: number): object => ({ type: 'integer', minimum, ...(maximum === undefined ? {} : { maximum }) });
const decimal = { type: 'string' } as const;
const addresses = { type: 'array', items: { type: 'string' } } as const;

/** An object with exactly these optional settings (and the required ones). */
function section(properties: Record<string, object>, required: string[] = []): object {
  return { type: 'object', additionalProperties: false, required, properties };
}

export const CONFIG_SCHEMA = section({
  $schema: { type: 'string' },
  server: section({
    host: { type: 'string' }, port: integer(0, 65_535), bodyLimitBytes: integer(1),
    keyWeightPerSecond: integer(1), ipWeightPerSecond: integer(1), ordersPerSecondPerUser: integer(1), wsMessagesPerSecond: integer(1),
    wsDepthIntervalMs: integer(0), wsSocketsPerAddress: integer(1), connectionsPerAddress: integer(0),
    rateBanAfter: integer(0), rateBanMs: integer(1_000), rateBanMaxMs: integer(1_000), rateBanExempt: addresses,
    requestTimeoutMs: integer(0), trustProxy: addresses, adminAllow: addresses,
  }),
  auth: section({
    recvWindowDefaultMs: integer(1), recvWindowMaxMs: integer(1), failuresBeforeLockout: integer(1), lockoutMs: integer(0),
    sessionTtlMs: integer(60_000), sessionIdleMs: integer(60_000),
  }),
  journal: section({ snapshotEvery: integer(1), writerThread: { type: 'boolean' } }),
  funding: section({
    addressHoldMs: integer(0), withdrawalsNeedKyc: { type: 'boolean' },
    assets: {
      type: 'array',
      items: section({
        asset: { type: 'string' }, network: { enum: NETWORKS }, xpub: { type: 'string' }, sharedAddress: { type: 'string' },
        tag: { enum: TAG_KINDS }, rail: { enum: RAILS }, confirmations: integer(0), minWithdrawal: decimal,
        withdrawalFee: decimal, withdrawalFeePercent: decimal, dailyLimits: { type: 'array', items: decimal },
        approvalAbove: decimal, hotWalletCap: decimal,
      }, ['asset']),
    },
  }),
  backups: section({ dir: { type: 'string', minLength: 1 } }),
  registration: section({ open: { type: 'boolean' } }),
  mail: section({
    from: { type: 'string', minLength: 3 }, venueName: { type: 'string', minLength: 1, maxLength: 64 }, linkBase: { type: 'string', pattern: '^https?://' },
    smtp: section({ host: { type: 'string', minLength: 1 }, port: integer(1, 65_535), secure: { type: 'boolean' }, requireTls: { type: 'boolean' }, user: { type: 'string' } }, ['host', 'port']),
  }),
  assets: { type: 'array', items: section({ code: { type: 'string' }, precision: integer(0, 18), minFee: decimal }, ['code', 'precision']) },
  markets: {
    type: 'array',
    items: section({
      base: { type: 'string' }, quote: { type: 'string' }, tick: decimal, lot: decimal,
      minQuantity: decimal, maxQuantity: decimal, minNotional: decimal, maxNotional: decimal,
      makerFee: decimal, takerFee: decimal, bandLow: decimal, bandHigh: decimal, collar: decimal, maxOpenOrders: integer(0),
      feeTiers: { type: 'array', maxItems: 32, items: section({ minVolume: decimal, makerFee: decimal, takerFee: decimal }, ['minVolume', 'makerFee', 'takerFee']) },
    }, ['base', 'quote', 'tick', 'lot']),
  },
  feeLevels: { type: 'array', items: section({ level: integer(0, 1_000), makerFee: decimal, takerFee: decimal }, ['level', 'makerFee', 'takerFee']) },
});

const validate = new Ajv({ allErrors: true, strict: true }).compile(CONFIG_SCHEMA);

/** Every problem with a parsed configuration file, one line each (none: it is valid). */
export function configProblems(file: unknown): string[] {
  if (validate(file)) return [];
  return (validate.errors ?? []).map(describe);
}

function describe(error: ErrorObject): string {
  const where = error.instancePath === '' ? 'the file' : error.instancePath.slice(1).replaceAll('/', '.');
  switch (error.keyword) {
    case 'additionalProperties':
      return `${where}: unknown setting "${String(error.params.additionalProperty)}"`;
    case 'required':
      return `${where}: missing "${String(error.params.missingProperty)}"`;
    case 'enum':
      return `${where}: must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`;
    default:
      return `${where}: ${error.message ?? 'is not valid'}`;
  }
}
