/**
 * How many TCP connections one address may hold open. Each costs a file descriptor, and the
 * process has a fixed number of them: without a cap, one client that opens connections and sends
 * nothing holds them all, and nobody else can connect.
 *
 * A connection over the cap is not dropped at once, so that a client can learn why: a request on
 * it is refused with 429 TOO_MANY_CONNECTIONS (the route hooks ask `refused`), and a connection
 * that sends nothing is closed after a second. Connections from a trusted reverse proxy are not
 * capped: they carry many clients, whom the proxy limits itself.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { addressSubject, unwrapIpv4 } from '../identity/ip.js';

const REFUSED_GRACE_MS = 1_000;

export interface ConnectionCap {
  /** Whether this connection came in over its address's cap. */
  refused(socket: Socket): boolean;
}

export function capConnectionsPerAddress(server: Server, perAddress: number, trusted: (peer: string) => boolean): ConnectionCap {
  const openBySubject = new Map<string, number>();
  const refusedSockets = new WeakSet<Socket>();
  if (perAddress > 0) {
    // After Node's own listener: it sets the socket's timeout to the server's, which a refused
    // connection's shorter one must replace.
    server.on('connection', (socket: Socket) => {
      const peer = unwrapIpv4(socket.remoteAddress ?? '');
      if (peer === '' || trusted(peer)) return;
      const subject = addressSubject(peer);
      const open = openBySubject.get(subject) ?? 0;
      if (open >= perAddress) {
        refusedSockets.add(socket);
        socket.setTimeout(REFUSED_GRACE_MS);
        return;
      }
      openBySubject.set(subject, open + 1);
      socket.once('close', () => {
        const left = (openBySubject.get(subject) ?? 1) - 1;
        if (left <= 0) openBySubject.delete(subject);
        else openBySubject.set(subject, left);
      });
    });
  }
  return { refused: (socket) => refusedSockets.has(socket) };
}
