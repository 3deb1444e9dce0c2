/**
 * The native WebSocket as the client's feeds use it: JSON messages in and out, and a new
 * connection after a lost one, the pause doubling from `reconnectMs` up to `maxReconnectMs` and
 * starting over once a connection opens. Each feed starts again from fresh snapshots on `open`.
 */
import { WebSocket } from 'ws';
import { apiErrorOf } from './rest.js';

export interface ReconnectOptions { reconnectMs?: number; maxReconnectMs?: number }

export interface SocketHandlers {
  /** A connection opened (the first, or one after a loss): subscribe here. */
  open: () => void;
  message: (message: Record<string, unknown>) => void;
  /** The connection was lost; a new one follows after the pause. */
  lost: () => void;
  /** What went wrong that the feed's user may want to hear of (a refused upgrade, a message that is not JSON). */
  problem: (error: unknown) => void;
}

export class ReconnectingSocket {
  private socket: WebSocket | null = null;
  private closed = false;
  private pause: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly url: string, private readonly options: ReconnectOptions, private readonly handlers: SocketHandlers) {
    this.pause = options.reconnectMs ?? 100;
    this.connect();
  }

  send(message: unknown): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  /** Ends this connection; the next one follows after the pause, or after `waitMs` if that is longer. */
  drop(waitMs = 0): void {
    this.pause = Math.max(this.pause, waitMs);
    this.socket?.close();
  }

  /** Ends the connection for good. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.close();
  }

  private connect(): void {
    const socket = new WebSocket(`${this.url.replace(/^http/, 'ws')}/ws`);
    this.socket = socket;
    socket.on('open', () => {
      this.pause = this.options.reconnectMs ?? 100;
      this.handlers.open();
    });
    socket.on('message', (data) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        return this.handlers.problem(new Error('the server sent a message that is not JSON'));
      }
      this.handlers.message(message);
    });
    // A refused upgrade (a spent budget, a ban, too many sockets) says how long to wait: the next
    // attempt waits at least that long, since one sooner would be refused again, and keeping on
    // after a 429 gets an address banned.
    let refused = false;
    socket.on('unexpected-response', (_request, response) => {
      refused = true;
      const retryAfter = Number(response.headers['retry-after']);
      if (Number.isFinite(retryAfter) && retryAfter > 0) this.pause = Math.max(this.pause, retryAfter * 1000);
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { if (body.length < 4_096) body += chunk; });
      response.on('end', () => {
        this.handlers.problem(apiErrorOf(response.statusCode ?? 0, body, Number.isFinite(retryAfter) ? retryAfter : undefined, `the server refused the socket with ${response.statusCode}`));
        socket.terminate();
      });
    });
    socket.on('error', (error) => { if (!refused) this.handlers.problem(error); });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.closed) return;
      this.handlers.lost();
      this.timer = setTimeout(() => this.connect(), this.pause);
      this.pause = Math.min(this.pause * 2, this.options.maxReconnectMs ?? 5_000);
    });
  }
}

