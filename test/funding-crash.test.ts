import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from './support/api-client.js';
import type { Credentials } from './support/api-client.js';
import { admin, CLI, startServer } from './support/server-process.js';
import { outbox } from './support/mail.js';

const CRASH_POINTS = ['after-request', 'after-lock', 'after-sending', 'after-send', 'after-settle'];
/** Crash points before the request took effect: the restart's recovery carries it out, and tells the owner. */
const BEFORE_EFFECT = new Set(['after-request', 'after-lock']);
const DESTINATION = '0x52908400098527886E0F7030069857D2E4169EE7';

const CONFIG = {
  assets: [{ code: 'USDT', precision: 6 }],
  funding: {
    addressHoldMs: 0,
    assets: [{
      asset: 'USDT', network: 'ethereum', confirmations: 1, minWithdrawal: '10', withdrawalFee: '1',
      xpub: 'xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt',
    }],
  },
};

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode ?? child.exitCode);
    else child.once('exit', (code, signal) => resolve(signal ?? code));
  });
}

for (const point of CRASH_POINTS) {
  test(`a crash ${point.replace('-', ' ')} of a withdrawal: after restart it is paid exactly once and the lock is settled, never lost; the owner is mailed of it at most once`, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), `bourse-wd-crash-${point}-`));
    const configPath = join(dataDir, 'config.json');
    writeFileSync(configPath, JSON.stringify(CONFIG));
    const args = ['--config', configPath];
    try {
      const first = await startServer(dataDir, args, { BOURSE_FUNDING_CRASH_AT: point });
      await admin(first.url, dataDir, '/users', { email: 'crash@example.com', password: 'correct horse battery' });
      await admin(first.url, dataDir, '/deposits', { email: 'crash@example.com', asset: 'USDT', amount: '1000' });
      const key = await admin(first.url, dataDir, '/apikeys', { email: 'crash@example.com', permissions: ['read', 'withdraw'], ip: ['127.0.0.1'] });
      const credentials: Credentials = { key: key.key, secret: key.secret };
      const allowed = await call(first.url, 'POST', '/api/v1/withdrawal-addresses', { credentials, body: { asset: 'USDT', address: DESTINATION } });
      assert.equal(allowed.status, 201, JSON.stringify(allowed.body));
      const request = { asset: 'USDT', amount: '100', address: DESTINATION, request_id: 'rent' };
      // The server kills itself at the crash point: the answer may never come.
      await call(first.url, 'POST', '/api/v1/withdrawals', { credentials, body: request }).catch(() => undefined);
      assert.equal(await exited(first.child), 'SIGKILL', `the server crashed ${point}`);

      const second = await startServer(dataDir, args);
      try {
        // The client retries with the same request id: the same withdrawal, never a second one.
        const retried = await call(second.url, 'POST', '/api/v1/withdrawals', { credentials, body: request });
        assert.equal(retried.status, 201, JSON.stringify(retried.body));
        assert.equal(retried.body.id, '1');
        let state = '';
        for (let i = 0; i < 300 && state !== 'completed'; i++) {
          state = (await call(second.url, 'GET', '/api/v1/withdrawals/1', { credentials })).body.state;
          if (state !== 'completed') await new Promise((r) => setTimeout(r, 10));
        }
        assert.equal(state, 'completed');
        const outgoing = (await admin(second.url, dataDir, '/chain/outgoing', undefined, 'GET')).transactions as { send_id: string; amount: string }[];
        assert.deepEqual(outgoing.map((t) => [t.send_id, t.amount]), [['wd:1', '100.000000']], 'paid exactly once');
        const usdt = (await call(second.url, 'GET', '/api/v1/balances', { credentials })).body.balances.find((b: { asset: string }) => b.asset === 'USDT');
        assert.deepEqual([usdt.available, usdt.locked], ['899.000000', '0.000000'], 'amount and fee gone once; nothing left locked');
        assert.equal((await call(second.url, 'GET', '/api/v1/withdrawals', { credentials })).body.withdrawals.length, 1);
        const requested = async () => (await outbox(dataDir, 0)).filter((m) => m.subject.startsWith('Withdrawal of 100.000000 USDT requested'));
        for (let i = 0; i < 100 && BEFORE_EFFECT.has(point) && (await requested()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        // A mail under way when the process died is lost (mail has no durable queue), so a crash
        // after the request took effect may leave none; never two.
        if (BEFORE_EFFECT.has(point)) assert.equal((await requested()).length, 1, 'the owner is told of the withdrawal the restart carried out');
        else assert.ok((await requested()).length <= 1);
      } finally {
        second.child.kill('SIGTERM');
        await exited(second.child);
      }
      const verify = spawnSync(process.execPath, [CLI, 'verify', '--data', dataDir], { encoding: 'utf8' });
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

test('a withdrawal whose user was disabled while its lock was in flight is cancelled and unlocked at its next step, never sent', async () => {
  const { IdentityStore } = await import('../src/identity/store.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-wd-disabled-'));
  const configPath = join(dataDir, 'config.json');
  writeFileSync(configPath, JSON.stringify(CONFIG));
  const args = ['--config', configPath];
  try {
    const first = await startServer(dataDir, args, { BOURSE_FUNDING_CRASH_AT: 'after-lock' });
    await admin(first.url, dataDir, '/users', { email: 'gone@example.com', password: 'correct horse battery' });
    await admin(first.url, dataDir, '/deposits', { email: 'gone@example.com', asset: 'USDT', amount: '1000' });
    const key = await admin(first.url, dataDir, '/apikeys', { email: 'gone@example.com', permissions: ['read', 'withdraw'], ip: ['127.0.0.1'] });
    const credentials: Credentials = { key: key.key, secret: key.secret };
    assert.equal((await call(first.url, 'POST', '/api/v1/withdrawal-addresses', { credentials, body: { asset: 'USDT', address: DESTINATION } })).status, 201);
    await call(first.url, 'POST', '/api/v1/withdrawals', { credentials, body: { asset: 'USDT', amount: '100', address: DESTINATION, request_id: 'out' } }).catch(() => undefined);
    assert.equal(await exited(first.child), 'SIGKILL', 'stopped with the funds locked and the withdrawal not yet approved');

    // The state a disable leaves when it lands between the lock and the approval: the user is
    // disabled, and the withdrawal, not yet in a state the disable cancels, goes on from its row.
    const identity = new IdentityStore(join(dataDir, 'identity.db'), Buffer.alloc(32));
    assert.equal(identity.setDisabled(identity.userByEmail('gone@example.com')!.id, Date.now()), true);
    identity.close();

    const second = await startServer(dataDir, args);
    try {
      let row: { state?: string; reason?: string } = {};
      for (let i = 0; i < 300 && row.state !== 'cancelled'; i++) {
        row = ((await admin(second.url, dataDir, '/withdrawals', undefined, 'GET')).withdrawals as { state: string; reason: string }[])[0] ?? {};
        if (row.state !== 'cancelled') await new Promise((r) => setTimeout(r, 10));
      }
      assert.deepEqual([row.state, row.reason], ['cancelled', 'USER_DISABLED']);
      assert.deepEqual((await admin(second.url, dataDir, '/chain/outgoing', undefined, 'GET')).transactions, [], 'nothing sent');
      const shown = await admin(second.url, dataDir, '/users?email=gone%40example.com', undefined, 'GET');
      assert.deepEqual(shown.accounts[0].balances, [{ asset: 'USDT', available: '1000.000000', reserved: '0.000000', locked: '0.000000' }], 'the lock is released');
    } finally {
      second.child.kill('SIGTERM');
      await exited(second.child);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
