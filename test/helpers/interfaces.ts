import type { NetworkInterfaceInfo } from 'node:os';
import type { InterfaceSources } from '../../src/net/interfaces.js';

/** One fake link: what os.networkInterfaces() lists for it and what /sys/class/net/<name>/ holds. */
export interface FakeLink {
  /** IPv4 address and netmask; absent when the link has none (or is down: the list leaves it out). */
  v4?: { address: string; netmask: string };
  /** IPv6 addresses listed beside it. */
  v6?: string[];
  /** /sys attributes: ifindex, mtu, operstate. A missing one reads as absent. */
  sys?: { ifindex?: string; mtu?: string; operstate?: string };
}

/** `InterfaceSources` over fake links, so interface code is tested with no real interfaces. */
export function fakeInterfaces(links: Record<string, FakeLink>): InterfaceSources & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    list: () => {
      const out: NodeJS.Dict<NetworkInterfaceInfo[]> = {};
      for (const [name, link] of Object.entries(links)) {
        const entries: NetworkInterfaceInfo[] = (link.v6 ?? []).map((address) => ({
          address,
          netmask: 'ffff:ffff:ffff:ffff::',
          family: 'IPv6',
          mac: '52:54:00:12:34:56',
          internal: false,
          cidr: `${address}/64`,
          scopeid: 0,
        }));
        if (link.v4) {
          entries.push({
            ...link.v4,
            family: 'IPv4',
            mac: '52:54:00:12:34:56',
            internal: false,
            cidr: null,
          });
        }
        if (entries.length > 0) out[name] = entries;
      }
      return out;
    },
    readSys: (name, attr) => {
      reads.push(`${name}/${attr}`);
      return (links[name]?.sys as Record<string, string | undefined> | undefined)?.[attr];
    },
  };
}
