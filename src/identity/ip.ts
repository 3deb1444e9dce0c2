import { BlockList, isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/** An allow-list from addresses and CIDR blocks (IPv4 and IPv6). */
export function blockList(entries: string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/');
    const type = isIPv4(address ?? '') ? 'ipv4' : isIPv6(address ?? '') ? 'ipv6' : null;
    if (type === null) throw new Error(`not an IP address or CIDR block: ${entry}`);
    if (prefix === undefined) list.addAddress(address!, type);
    else list.addSubnet(address!, Number(prefix), type);
  }
  return list;
}

/** Whether an address (IPv4 or IPv6) is in an allow-list made by blockList. */
export function allows(list: BlockList, ip: string): boolean {
  return list.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
}

/** The loopback addresses, IPv4 and IPv6, as allow-list entries. */
export const LOOPBACK = ['127.0.0.0/8', '::1'];

/** "::ffff:127.0.0.1" → "127.0.0.1", so that IPv4 rules match on dual-stack sockets. */
export function unwrapIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * The subject an address's request budget and lockouts are kept under: the IPv4 address, or the
 * /64 an IPv6 address belongs to. One host may use any address of its /64, so a budget per IPv6
 * address would not bind it; a /64 is one site's share, as it is for most rate limiters.
 */
export function addressSubject(ip: string): string {
  // IPv4 is the common case (IPv4-mapped IPv6 comes here already unwrapped): no parsing.
  if (!ip.includes(':')) return `ip:${ip}`;
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    address = ipaddr.process(ip);
  } catch {
    return `ip:${ip}`;
  }
  if (address.kind() === 'ipv4') return `ip:${address.toString()}`;
  return `ip:${(address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16)).join(':')}::/64`;
}
