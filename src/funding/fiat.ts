/**
 * Bank details and fiat deposit references.
 *
 * - SEPA: IBAN (country format and mod-97 check) and BIC, validated with ibantools.
 * - SPEI: an 18-digit CLABE whose last digit is the weighted check digit (3, 7, 1), validated with
 *   clabe-validator.
 * - Deposit references: every user gets a reference to quote on an incoming bank transfer;
 *   "BRS" + the user id + an ISO 7064 mod 97-10 check pair, so that a mistyped reference is
 *   refused instead of crediting someone else.
 */
import { electronicFormatIBAN, isValidBIC, isValidIBAN } from 'ibantools';
import { clabe } from 'clabe-validator';

export const RAILS = ['sepa', 'spei'] as const;
export type Rail = (typeof RAILS)[number];

export interface BankDetails { rail: Rail; holder: string; iban?: string; bic?: string; clabe?: string }

/** Normalised details, or the reason they are invalid. */
export function checkBankDetails(input: { rail: Rail; holder: string; iban?: string; bic?: string; clabe?: string }): BankDetails | string {
  const holder = input.holder.trim();
  if (holder.length === 0 || holder.length > 140) return 'holder must be 1..140 characters';
  if (input.rail === 'sepa') {
    const iban = electronicFormatIBAN(input.iban ?? '') ?? '';
    if (!isValidIBAN(iban)) return 'IBAN is not valid (country format or check digits)';
    const bic = (input.bic ?? '').toUpperCase().replace(/\s+/g, '');
    if (!isValidBIC(bic)) return 'BIC is not valid';
    if (input.clabe !== undefined) return 'a SEPA account has no CLABE';
    return { rail: 'sepa', holder, iban, bic };
  }
  const number = (input.clabe ?? '').replace(/\s+/g, '');
  if (!/^\d{18}$/.test(number)) return 'a CLABE has 18 digits';
  const check = clabe.computeChecksum(number.slice(0, 17));
  if (check === null || check !== Number(number[17])) return 'CLABE check digit does not match';
  if (!clabe.validate(number).valid.bank) return 'CLABE bank code is unknown';
  if (input.iban !== undefined || input.bic !== undefined) return 'a SPEI account has no IBAN or BIC';
  return { rail: 'spei', holder, clabe: number };
}

function mod97(digits: string): number {
  let remainder = 0;
  for (const digit of digits) remainder = (remainder * 10 + Number(digit)) % 97;
  return remainder;
}

export function depositReference(userId: number): string {
  const check = 98 - mod97(`${userId}00`);
  return `BRS${userId}${String(check).padStart(2, '0')}`;
}

/** The user id a reference names, or null when it is malformed or its check pair is wrong. */
export function userOfReference(reference: string): number | null {
  const match = /^BRS(\d{1,12})(\d{2})$/.exec(reference.trim().toUpperCase().replace(/\s+/g, ''));
  if (match === null) return null;
  const userId = Number(match[1]);
  return depositReference(userId) === `BRS${match[1]}${match[2]}` ? userId : null;
}
