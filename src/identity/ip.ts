import { BlockList, isIPv4, isIPv6 } from 'node:net';

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
