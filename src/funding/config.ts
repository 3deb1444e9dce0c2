/**
 * Funding settings per asset (the `funding` section of the configuration file). Amounts are
 * decimal strings in the asset's units; percentages are fractions ("0.001" = 0.1 %).
 */
import type { Network, TagKind } from './chains/addresses.js';
import type { Rail } from './fiat.js';

export interface FundingAssetConfig {
  asset: string;
  /** Crypto: the chain and how addresses are made (an extended public key, or one shared address with tags). */
  network?: Network;
  xpub?: string;
  sharedAddress?: string;
  tag?: TagKind;
  /** Fiat: the bank rail. */
  rail?: Rail;
  /** Confirmations before a deposit is credited (default 1). */
  confirmations?: number;
  minWithdrawal?: string;
  withdrawalFee?: string;
  withdrawalFeePercent?: string;
  /** Withdrawal limit per rolling 24 h by user level: index 0 = level 0, the last one applies above. */
  dailyLimits?: string[];
  /** Withdrawals of more than this wait for an operator's approval. */
  approvalAbove?: string;
  /** The most the hot wallet pays out at once; larger withdrawals wait for an operator. */
  hotWalletCap?: string;
}

export interface FundingConfig {
  /** New withdrawal addresses, and all of them after a credential change, wait this long (default 24 h). */
  addressHoldMs: number;
  /**
   * Withdrawals and transfers to other users only for users whose KYC status is OK (default
   * false: levels alone set the limits). Deposits, trading and transfers between a user's own
   * accounts are not gated.
   */
  withdrawalsNeedKyc?: boolean;
  assets: FundingAssetConfig[];
}

export const DEFAULT_FUNDING: FundingConfig = { addressHoldMs: 86_400_000, assets: [] };

/**
 * Demo funding, on the simulated chain. The extended public keys belong to the well-known BIP39
 * test mnemonic ("abandon … about"): fine for a demo, never for real money.
 */
export const DEMO_FUNDING: FundingConfig = {
  addressHoldMs: 86_400_000,
  assets: [
    {
      asset: 'BTC', network: 'bitcoin', confirmations: 2, minWithdrawal: '0.0001', withdrawalFee: '0.00005',
      xpub: 'xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V',
      dailyLimits: ['0.5', '5', '50'], approvalAbove: '2', hotWalletCap: '10',
    },
    {
      asset: 'ETH', network: 'ethereum', confirmations: 3, minWithdrawal: '0.001', withdrawalFee: '0.001',
      xpub: 'xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt',
      dailyLimits: ['10', '100', '1000'], approvalAbove: '50', hotWalletCap: '200',
    },
    {
      asset: 'USDT', network: 'ethereum', confirmations: 3, minWithdrawal: '10', withdrawalFee: '1', withdrawalFeePercent: '0.001',
      xpub: 'xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt',
      dailyLimits: ['10000', '100000', '1000000'], approvalAbove: '50000', hotWalletCap: '250000',
    },
    {
      asset: 'XRP', network: 'ripple', sharedAddress: 'rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh', tag: 'dt', confirmations: 1,
      minWithdrawal: '20', withdrawalFee: '0.25', dailyLimits: ['10000', '100000'],
    },
    {
      asset: 'XLM', network: 'stellar', sharedAddress: 'GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7', tag: 'memoId', confirmations: 1,
      minWithdrawal: '10', withdrawalFee: '0.01', dailyLimits: ['100000', '1000000'],
    },
    {
      asset: 'XEM', network: 'nem', sharedAddress: 'NALICE2A73DLYTP4365GNFCURAUP3XVBFO7YNYOW', tag: 'message', confirmations: 1,
      minWithdrawal: '10', withdrawalFee: '0.05', dailyLimits: ['100000', '1000000'],
    },
    { asset: 'EUR', rail: 'sepa', minWithdrawal: '10', withdrawalFee: '1', dailyLimits: ['1000', '50000', '500000'], approvalAbove: '20000' },
    { asset: 'MXN', rail: 'spei', minWithdrawal: '100', withdrawalFee: '5', dailyLimits: ['20000', '1000000', '10000000'], approvalAbove: '400000' },
  ],
};
