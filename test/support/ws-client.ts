/** A WebSocket test client that queues messages and waits for the ones it needs. */
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';

export class SocketClient {
  readonly messages: any[] = [];
  private waiters: { match: (m: any) => boolean; resolve: (m: any) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  closed: { code: number; reason: string } | null = null;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message: unknown = JSON.parse(data.toString());
      this.messages.push(message);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(message)) {
          clearTimeout(waiter.timer);
          this.waiters = this.waiters.filter((w) => w !== waiter);
          waiter.resolve(message);
        }
      }
    });
    socket.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; });
  }

  static connect(url: string): Promise<SocketClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${url.replace('http', 'ws')}/ws`);
      socket.once('open', () => resolve(new SocketClient(socket)));
      socket.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.socket.send(JSON.stringify(message));
  }

  /** The first message (already received or coming) that matches. */
  next(match: (m: any) => boolean, timeoutMs = 5_000): Promise<any> {
    const seen = this.messages.find(match);
    if (seen !== undefined) {
      this.messages.splice(this.messages.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message in ${timeoutMs} ms; have ${JSON.stringify(this.messages.slice(-5))}`)), timeoutMs);
      this.waiters.push({ match, resolve: (m) => { this.messages.splice(this.messages.indexOf(m), 1); resolve(m); }, reject, timer });
    });
  }

  /** Authenticates with an API key (signature of timestamp + "GET/ws"); resolves when accepted. */
  async login(credentials: { key: string; secret: string }, timestamp = Date.now()): Promise<void> {
    const signature = createHmac('sha256', credentials.secret).update(`${timestamp}GET/ws`).digest('hex');
    this.send({ op: 'auth', key: credentials.key, timestamp: String(timestamp), signature });
    const answer = await this.next((m) => m.event === 'authenticated' || m.event === 'error');
    if (answer.event !== 'authenticated') throw new Error(`login refused: ${JSON.stringify(answer)}`);
  }

  close(): void {
    this.socket.close();
  }
}

/** A socket upgrade's outcome: the open socket, or the status, error code and Retry-After it was refused with. */
export type Upgrade = { socket: WebSocket } | { status: number; code: string; retryAfter: number | undefined };

/** Opens a socket (with `headers`, e.g. X-Forwarded-For behind a trusted proxy); resolves with it or with the refusal. */
export function tryConnect(url: string, headers: Record<string, string> = {}): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/ws`, { headers });
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      response.on('end', () => {
        const retryAfter = response.headers['retry-after'];
        resolve({ status: response.statusCode ?? 0, code: (JSON.parse(body) as { error: { code: string } }).error.code, retryAfter: retryAfter === undefined ? undefined : Number(retryAfter) });
      });
    });
    socket.once('error', reject);
  });
}
