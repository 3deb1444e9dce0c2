/**
 * The texts of the mails an account gets: what each says, in plain text. A code is shown with
 * the link that takes it when the venue has pages (MailConfig.linkBase), otherwise with the API
 * call, so that the mail is usable either way.
 */
import type { Mail, MailConfig } from './mailer.js';
import { FREEZE_CODE_TTL_MS } from '../identity/store.js';

function hours(ms: number): string {
  const h = ms / 3_600_000;
  return h === 1 ? 'an hour' : `${h} hours`;
}

function codeLines(config: MailConfig, page: string, apiPath: string, token: string, apiBody: string): string[] {
  if (config.linkBase !== undefined) return [`${config.linkBase.replace(/\/+$/, '')}/${page}?token=${token}`];
  return [`Your code: ${token}`, '', `To use it: POST ${apiPath} with ${apiBody}`];
}

/** The end of every warning: how to freeze the account without logging in. */
export function freezeLines(config: MailConfig, token: string): string[] {
  return [
    'Not you? Freeze the account at once, without logging in:',
    ...codeLines(config, 'freeze', '/api/v1/auth/freeze/code', token, '{"token": "<the code>"}'),
    `Frozen, the account can do nothing (no login, no key, no withdrawal) until support unfreezes it. This code works for ${FREEZE_CODE_TTL_MS / 86_400_000} days.`,
  ];
}

export function accountFrozenMail(config: MailConfig, to: string, how: 'with a code from a mail' | 'from a session'): Mail {
  return {
    to, purpose: 'account_frozen', subject: `Your ${config.venueName} account is frozen`,
    text: [
      `Your ${config.venueName} account was frozen ${how}: no login, no API key and no withdrawal works, sessions have ended, and withdrawals not yet sent are cancelled. Open orders stay.`, '',
      'To unfreeze it, contact support.',
    ].join('\n'),
  };
}

export function confirmEmailMail(config: MailConfig, to: string, token: string, validMs: number): Mail {
  return {
    to, purpose: 'confirm_email', subject: `Confirm your email for ${config.venueName}`,
    text: [
      `Welcome to ${config.venueName}.`, '', 'To finish opening your account, confirm this address:', '',
      ...codeLines(config, 'confirm-email', '/api/v1/auth/signup/confirm', token, '{"token": "<the code>"}'), '',
      `This code works once and expires in ${hours(validMs)}. If you did not sign up, ignore this mail: no account is opened without it.`,
    ].join('\n'),
  };
}

/** To the owner of an address someone tried to sign up with again: no account is opened, nothing is revealed to the one who tried. */
export function alreadyRegisteredMail(config: MailConfig, to: string): Mail {
  return {
    to, purpose: 'already_registered', subject: `Sign-up attempt at ${config.venueName}`,
    text: [
      `Someone tried to open a ${config.venueName} account with this address, which already has one.`, '',
      'If it was you, log in instead; if you forgot your password, ask for a reset (POST /api/v1/auth/password-reset).',
      'If it was not you, you need do nothing: your account is unchanged.',
    ].join('\n'),
  };
}

export function resetPasswordMail(config: MailConfig, to: string, token: string, validMs: number): Mail {
  return {
    to, purpose: 'reset_password', subject: `Reset your ${config.venueName} password`,
    text: [
      `Someone (we hope you) asked to reset the password of your ${config.venueName} account.`, '',
      ...codeLines(config, 'reset-password', '/api/v1/auth/password-reset/confirm', token, '{"token": "<the code>", "new_password": "…", "totp": "<your two-factor code, if it is on>"}'), '',
      `This code works once and expires in ${hours(validMs)}; a newer request replaces it. Resetting ends every session and holds withdrawals for a while.`,
      'If you did not ask, ignore this mail: your password stays as it is.',
    ].join('\n'),
  };
}

export function passwordChangedMail(config: MailConfig, to: string, how: 'by you' | 'with a reset code' | 'by support'): Mail {
  return {
    to, purpose: 'password_changed', subject: `Your ${config.venueName} password was changed`,
    text: [
      `The password of your ${config.venueName} account was changed ${how}. Sessions logged in elsewhere have ended and withdrawals wait out the security hold.`, '',
      'If this was not you, contact support at once.',
    ].join('\n'),
  };
}

export function twoFactorResetMail(config: MailConfig, to: string, by: 'support' | 'you' = 'support'): Mail {
  return {
    to, purpose: 'two_factor_reset', subject: `Two-factor authentication turned off at ${config.venueName}`,
    text: (by === 'support'
      ? [
        `Support turned off two-factor authentication on your ${config.venueName} account. Your sessions have ended and withdrawals wait out the security hold.`, '',
        'Turn it on again after logging in. If you did not ask for this, contact support at once.',
      ]
      : [
        `You turned off two-factor authentication on your ${config.venueName} account, with your password and a code. Your other sessions have ended and withdrawals wait out the security hold.`, '',
        'Logging in now needs only the password: turn it on again, with a new device, as soon as you can.',
      ]).join('\n'),
  };
}

/** Two-factor turned on: a thief who knows the password could lock the owner out with their own device. */
export function twoFactorEnabledMail(config: MailConfig, to: string): Mail {
  return {
    to, purpose: 'two_factor_enabled', subject: `Two-factor authentication turned on at ${config.venueName}`,
    text: [
      `Two-factor authentication is now on for your ${config.venueName} account: logging in and moving money need a code from the authenticator app it was set up with. Withdrawals wait out the security hold.`,
    ].join('\n'),
  };
}

/** A login from an address the user had not logged in from before. */
export function newLoginMail(config: MailConfig, to: string, login: { address: string; userAgent: string; at: number }): Mail {
  return {
    to, purpose: 'new_login', subject: `New login to ${config.venueName} from ${login.address}`,
    text: [
      `Your ${config.venueName} account was logged in to from an address it had not been used from before:`, '',
      `  when:    ${new Date(login.at).toISOString()}`, `  address: ${login.address}`, `  client:  ${login.userAgent === '' ? '(not given)' : login.userAgent}`, '',
      'If this was you, nothing needs doing. If not, change your password at once, end the other sessions (DELETE /api/v1/auth/sessions) and contact support.',
    ].join('\n'),
  };
}

/** A withdrawal as its mails describe it: amounts already in the asset's decimals. */
export interface WithdrawalNote { id: string; asset: string; amount: string; fee: string; to: string; txid: string | null; reason: string | null }

/** Sent when a withdrawal is asked for: the last chance to stop one made with stolen credentials. */
export function withdrawalRequestedMail(config: MailConfig, to: string, w: WithdrawalNote, waitsFor: 'two_factor' | 'review' | 'nothing'): Mail {
  const next = waitsFor === 'two_factor' ? 'It waits for your two-factor code (POST /api/v1/withdrawals/{id}/confirm).'
    : waitsFor === 'review' ? 'It waits for review by the exchange before it is sent.' : 'It is on its way to be sent.';
  return {
    to, purpose: 'withdrawal_requested', subject: `Withdrawal of ${w.amount} ${w.asset} requested at ${config.venueName}`,
    text: [
      `A withdrawal was requested from your ${config.venueName} account:`, '',
      `  id:      ${w.id}`, `  amount:  ${w.amount} ${w.asset} (fee ${w.fee} ${w.asset})`, `  to:      ${w.to}`, '', next.replace('{id}', w.id), '',
      `If this was not you, cancel it at once (DELETE /api/v1/withdrawals/${w.id}), change your password and contact support.`,
    ].join('\n'),
  };
}

export function withdrawalSentMail(config: MailConfig, to: string, w: WithdrawalNote): Mail {
  return {
    to, purpose: 'withdrawal_sent', subject: `Withdrawal of ${w.amount} ${w.asset} sent from ${config.venueName}`,
    text: [`Your withdrawal ${w.id} of ${w.amount} ${w.asset} to ${w.to} has been sent.`, '', `  transaction: ${w.txid ?? '(none)'}`].join('\n'),
  };
}

/** Refused by the exchange or given up on: the funds are back in the account. */
export function withdrawalStoppedMail(config: MailConfig, to: string, w: WithdrawalNote, how: 'rejected' | 'failed'): Mail {
  return {
    to, purpose: 'withdrawal_stopped', subject: `Withdrawal of ${w.amount} ${w.asset} ${how === 'rejected' ? 'rejected' : 'not sent'} at ${config.venueName}`,
    text: [
      `Your withdrawal ${w.id} of ${w.amount} ${w.asset} to ${w.to} was ${how === 'rejected' ? 'rejected' : 'not sent'}${w.reason === null ? '' : ` (${w.reason})`}.`,
      'The amount and its fee are available in your account again.',
    ].join('\n'),
  };
}

export function depositCreditedMail(config: MailConfig, to: string, d: { asset: string; amount: string; txid: string }): Mail {
  return {
    to, purpose: 'deposit_credited', subject: `Deposit of ${d.amount} ${d.asset} credited at ${config.venueName}`,
    text: [`A deposit of ${d.amount} ${d.asset} has been credited to your ${config.venueName} account.`, '', `  transaction: ${d.txid}`].join('\n'),
  };
}

/** To the new address of an account, whose code moves the account to it. */
export function confirmNewEmailMail(config: MailConfig, to: string, token: string, validMs: number): Mail {
  return {
    to, purpose: 'change_email', subject: `Confirm your new email for ${config.venueName}`,
    text: [
      `Someone (we hope you) asked to move a ${config.venueName} account to this address. To confirm it:`, '',
      ...codeLines(config, 'confirm-email-change', '/api/v1/auth/email/confirm', token, '{"token": "<the code>"}'), '',
      `This code works once and expires in ${hours(validMs)}. If you did not ask, ignore this mail: nothing changes without it.`,
    ].join('\n'),
  };
}

/** To the address an account had (the last word its old mailbox gets), and, after support's change, to the new one. */
export function emailChangedMail(config: MailConfig, to: string, change: { from: string; to: string }, how: 'by you' | 'by support', userId: number): Mail {
  return {
    to, userId, purpose: 'email_changed', subject: `Your ${config.venueName} email was changed`,
    text: [
      `The email of your ${config.venueName} account was changed ${how} from ${change.from} to ${change.to}. You log in with ${change.to} from now on; sessions have ended and withdrawals wait out the security hold.`, '',
      'If this was not you, contact support at once.',
    ].join('\n'),
  };
}

/** A new API key: the classic sign of an account taken over to trade or withdraw. */
export function apiKeyCreatedMail(config: MailConfig, to: string, key: { key: string; permissions: string[]; ipAllow: string[]; label: string }, how: 'by you' | 'by support'): Mail {
  return {
    to, purpose: 'api_key_created', subject: `New API key on your ${config.venueName} account`,
    text: [
      `An API key was made ${how} on your ${config.venueName} account:`, '',
      `  key:         ${key.key}${key.label === '' ? '' : ` ("${key.label}")`}`, `  permissions: ${key.permissions.join(', ')}`,
      `  usable from: ${key.ipAllow.length === 0 ? 'any address' : key.ipAllow.join(', ')}`, '',
      'If this was not you, revoke it (DELETE /api/v1/auth/apikeys/{key}), change your password and contact support.'.replace('{key}', key.key),
    ].join('\n'),
  };
}

/** A key about to expire: a bot that signs with it stops at that moment unless its owner makes a new one. */
export function apiKeyExpiringMail(config: MailConfig, to: string, key: { key: string; label: string; expiresAt: number }): Mail {
  return {
    to, purpose: 'api_key_expiring', subject: `An API key on your ${config.venueName} account expires ${new Date(key.expiresAt).toISOString().slice(0, 10)}`,
    text: [
      `This API key on your ${config.venueName} account stops working at ${new Date(key.expiresAt).toISOString()}:`, '',
      `  key: ${key.key}${key.label === '' ? '' : ` ("${key.label}")`}`, '',
      'Whatever signs with it (a trading bot, a script) is refused from then on with KEY_EXPIRED. Make a new key before then and move them to it.',
    ].join('\n'),
  };
}

/** A new withdrawal address: it waits out its hold, which is the owner's time to stop a thief's. */
export function withdrawalAddressAddedMail(config: MailConfig, to: string, a: { asset: string; address: string; tag: string; usableAt: number }): Mail {
  return {
    to, purpose: 'withdrawal_address_added', subject: `New ${a.asset} withdrawal address on your ${config.venueName} account`,
    text: [
      `A ${a.asset} withdrawal address was added to your ${config.venueName} account:`, '',
      `  address: ${a.address}${a.tag === '' ? '' : ` (tag ${a.tag})`}`, `  usable from: ${new Date(a.usableAt).toISOString()}`, '',
      'If this was not you, remove it (DELETE /api/v1/withdrawal-addresses) before then, change your password and contact support.',
    ].join('\n'),
  };
}
