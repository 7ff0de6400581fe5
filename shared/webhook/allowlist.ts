import { BlockList, isIP } from 'node:net';

/**
 * The source addresses the receiver accepts webhooks from (docs/webhooks.md, "Stage settings":
 * `webhookAllowedIps`): eCourtDate shows two IPs per webhook in its Console. Entries are IPv4 or IPv6 addresses or CIDR ranges; an empty list
 * means the allowlist is off. Matching uses Node's `net.BlockList`, which also matches IPv4-mapped IPv6.
 */
export interface IpAllowlist {
  /** False when no entry was configured: every source is accepted. */
  readonly enabled: boolean;
  /** True when `address` (the request context's source IP) is on the list, or the list is off. */
  allows(address: string | undefined): boolean;
}

/**
 * Parses a comma-separated list of addresses and CIDR ranges. Throws a `RangeError` naming the bad entry.
 *
 * @example parseIpAllowlist('203.0.113.10, 203.0.113.11, 198.51.100.0/24').allows('198.51.100.7') === true
 */
export function parseIpAllowlist(raw: string | undefined): IpAllowlist {
  const entries = (raw ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return { enabled: false, allows: () => true };
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || extra !== undefined) {
      throw new RangeError(`"${entry}" is not an IPv4 or IPv6 address or CIDR range`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) {
      list.addAddress(address, type);
      continue;
    }
    const bits = Number(prefix);
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefix) || bits > max) {
      throw new RangeError(`"${entry}": the prefix length must be 0-${max}`);
    }
    list.addSubnet(address, bits, type);
  }
  return {
    enabled: true,
    allows(address) {
      if (address === undefined) return false;
      const family = isIP(address);
      if (family === 0) return false;
      return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}
