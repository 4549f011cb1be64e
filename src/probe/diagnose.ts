import type { OfferSummary } from './analyze.js';
import type { ProbeResult } from './run.js';

/** One diagnosis line; `code` is stable for scripts reading `--json`. */
export interface Finding {
  level: 'error' | 'warning' | 'note';
  code: string;
  text: string;
}

function routerTraps(lease: OfferSummary): Finding[] {
  const out: Finding[] = [];
  if (lease.pxeClient) {
    out.push({
      level: 'warning',
      code: 'router-sends-pxeclient',
      text:
        `The DHCP server ${lease.server} puts option 60 "PXEClient" in its address offer. UEFI firmware and ` +
        `legacy PXE ROMs then send their boot request to port 4011 of ${lease.server} instead of the proxy ` +
        '(PXE-E55 when nothing answers there). Remove option 60 from the DHCP server.',
    });
  }
  if (lease.bootFile || lease.tftpServerName !== undefined) {
    out.push({
      level: 'warning',
      code: 'router-sends-boot-options',
      text:
        `The DHCP server ${lease.server} already hands out ${lease.bootFile ? `boot file "${lease.bootFile}"` : ''}` +
        `${lease.bootFile && lease.tftpServerName !== undefined ? ' and ' : ''}` +
        `${lease.tftpServerName !== undefined ? `TFTP server "${lease.tftpServerName}" (option 66)` : ''}: ` +
        "many clients (iPXE always) prefer it to the proxy's answer.",
    });
  }
  return out;
}

function proxyTraps(proxies: OfferSummary[], res: ProbeResult): Finding[] {
  const out: Finding[] = [];
  if (proxies.length === 0 && !res.final) {
    out.push({
      level: 'error',
      code: 'no-proxy',
      text: 'No proxyDHCP server answered (no offer with yiaddr 0.0.0.0 and option 60 PXEClient): is pxe-pdhcp running on this LAN, bound to the right interface, with UDP 67 open in the firewall?',
    });
  }
  if (proxies.length > 1) {
    out.push({
      level: 'warning',
      code: 'several-proxies',
      text: `${proxies.length} proxyDHCP servers answered (${proxies.map((p) => p.server).join(', ')}): firmware takes whichever it ranks first, so what boots may change from one try to the next.`,
    });
  }
  for (const p of proxies) {
    if (p.uuidEcho === 'missing' || p.uuidEcho === 'differs') {
      out.push({
        level: 'note',
        code: 'uuid-not-echoed',
        text: `The proxy ${p.server} did not echo option 97 (PXE 2.1 says servers must); most firmware does not check.`,
      });
    }
    if (p.vendorShape === 'wfm11a')
      out.push({
        level: 'warning',
        code: 'wfm11a',
        text: `The proxy ${p.server} sends only multicast-TFTP PXE options (WfM 1.1a): EDK2 drops such offers.`,
      });
    if (p.vendorShape === 'malformed')
      out.push({
        level: 'error',
        code: 'bad-option-43',
        text: `Option 43 from ${p.server} is not a valid sub-option list.`,
      });
    if (p.vendorShape === 'bypass' && p.bootFile && p.nextServer === '0.0.0.0') {
      out.push({
        level: 'warning',
        code: 'no-next-server',
        text: `The proxy ${p.server} offers "${p.bootFile}" with siaddr 0.0.0.0: pxelinux and many ROMs take the TFTP server from siaddr only.`,
      });
    }
  }
  return out;
}

function exchangeTraps(res: ProbeResult): Finding[] {
  const out: Finding[] = [];
  if (res.offers.every((o) => o.kind !== 'address')) {
    out.push({
      level: 'error',
      code: 'no-address',
      text: 'No DHCP server offered an address: real firmware stops here. Is the DHCP server (router) reachable on this interface?',
    });
  } else if (!res.lease?.acked) {
    out.push({
      level: 'error',
      code: 'lease-refused',
      text: `The DHCP server ${res.lease?.server ?? '?'} did not acknowledge our request (${res.lease?.answer ?? 'none'}).`,
    });
  }
  if (res.plan.kind === 'none' && res.offers.some((o) => o.kind === 'proxy')) {
    out.push({ level: 'error', code: 'no-boot-file', text: `No usable boot answer: ${res.plan.reason}.` });
  }
  const br = res.bootRequest;
  if (br && !br.answered) {
    out.push({
      level: 'error',
      code: 'no-4011-answer',
      text: `Nobody answered the boot request sent to ${br.target} port 4011 (what firmware shows as PXE-E55 or "No response").`,
    });
  }
  if (br?.answered && br.sourcePort !== 4011) {
    out.push({
      level: 'warning',
      code: '4011-wrong-port',
      text: `The port 4011 answer came from port ${br.sourcePort}: iPXE discards answers not sent from 4011.`,
    });
  }
  if (br?.answered && !br.reply?.bootFile) {
    out.push({
      level: 'error',
      code: '4011-no-file',
      text: `The port 4011 answer from ${br.target} names no boot file.`,
    });
  }
  return out;
}

function fetchTraps(res: ProbeResult): Finding[] {
  const out: Finding[] = [];
  for (const t of res.fetch?.transfers ?? []) {
    if (t.ok || !t.failure) continue;
    if (t.failure.kind === 'timeout') {
      out.push({
        level: 'error',
        code: 'tftp-unreachable',
        text: `The TFTP server ${t.server} did not answer for "${t.file}": is a TFTP server running there, and is UDP 69 open?`,
      });
    } else if (t.failure.kind === 'error' && t.failure.code === 1) {
      out.push({
        level: 'error',
        code: 'tftp-file-missing',
        text: `The TFTP server ${t.server} has no file "${t.file}" (${t.role}): check the name and the TFTP root.`,
      });
    } else {
      out.push({
        level: 'error',
        code: 'tftp-failed',
        text: `Fetching "${t.file}" from ${t.server} failed: ${t.failure.message}.`,
      });
    }
  }
  const px = res.fetch?.pxelinux;
  if (px && !px.ldlinux.found) {
    const boot = res.final?.file ?? 'the boot file';
    out.push({
      level: 'error',
      code: 'pxelinux-no-ldlinux',
      text:
        `${boot} loads ${px.ldlinux.file} from its own directory before any config, and stops without it ` +
        `("Failed to load ${px.ldlinux.file.replace(/^.*\//, '')}"): copy it from the same syslinux release ` +
        '(Debian: syslinux-common, /usr/lib/syslinux/modules/bios or efi64) next to the boot file.',
    });
  } else if (px && !px.config && px.searched.every((s) => !s.found)) {
    out.push({
      level: 'error',
      code: 'pxelinux-no-config',
      text: `pxelinux would find no config file: none of ${px.searched.length} names exists (last: ${px.searched.at(-1)?.file ?? '-'}).`,
    });
  } else if (px?.config && !px.entry) {
    out.push({
      level: 'error',
      code: 'pxelinux-no-entry',
      text: `${px.config} has no default entry with a kernel or LOCALBOOT.`,
    });
  }
  return out;
}

/** Boot files that are shim or GRUB, which take GRUB's TFTP server from the router (docs/firmware.md#shim-and-grub). */
const SHIM_OR_GRUB = /(^|\/)(shim\w*|grub\w*)\.efi$/i;

/**
 * GRUB reads its TFTP server from the address server's DHCPACK only (siaddr, else option 66), never
 * from a proxy: when the router names another server, GRUB after shim cannot find its grub.cfg.
 */
function grubTraps(lease: OfferSummary | undefined, res: ProbeResult): Finding[] {
  const f = res.final;
  if (!lease || !f || !SHIM_OR_GRUB.test(f.file)) return [];
  const tftp = f.nextServer !== '0.0.0.0' ? f.nextServer : f.from;
  const named = lease.nextServer !== '0.0.0.0' ? lease.nextServer : lease.tftpServerName;
  if (named === tftp) return [];
  return [
    {
      level: 'warning',
      code: 'grub-server-from-router',
      text:
        `"${f.file}" is shim or GRUB: GRUB takes its TFTP server only from the DHCP server's answer, ` +
        `which names ${named ? `${named}, not ${tftp}` : 'none'} (siaddr ${lease.nextServer}` +
        `${lease.tftpServerName !== undefined ? `, option 66 "${lease.tftpServerName}"` : ''}); ` +
        `no proxy can change that, so GRUB will not find its grub.cfg: set next-server ${tftp} on ${lease.server}.`,
    },
  ];
}

/** With `--status`: a page that could not be read, a daemon that has not seen us, a decision URL that failed. */
function statusTraps(res: ProbeResult): Finding[] {
  const s = res.status;
  if (!s) return [];
  if (!s.ok) {
    return [
      {
        level: 'warning',
        code: 'status-unreadable',
        text:
          `The daemon's status page ${s.url} could not be read (${s.error}): which rule decided, and where ` +
          'the TFTP files came from, are unknown. Is pxe-pdhcp running with --metrics on that address?',
      },
    ];
  }
  const c = s.client;
  if (!c) {
    return [
      {
        level: 'warning',
        code: 'status-client-unknown',
        text:
          `The daemon at ${s.url} has not seen MAC ${res.mac}: the answer came from another server, or more ` +
          'than 50 clients came since.',
      },
    ];
  }
  if (c.decidedBy === 'fallback' && c.decide) {
    const d = c.decide;
    return [
      {
        level: 'warning',
        code: 'decide-url-fell-back',
        text:
          `The decision service ${d.url} failed (${typeof d.status === 'number' ? `HTTP ${d.status}` : d.status}` +
          `${d.detail ? `: ${d.detail}` : ''}), so the daemon's local rules answered instead.`,
      },
    ];
  }
  return [];
}

/** Name the classic PXE traps in plain words. Pure. */
export function diagnose(res: ProbeResult): Finding[] {
  const lease = res.offers.find((o) => o.kind === 'address');
  const proxies = res.offers.filter((o) => o.kind === 'proxy');
  return [
    ...(lease ? routerTraps(lease) : []),
    ...proxyTraps(proxies, res),
    ...exchangeTraps(res),
    ...grubTraps(lease, res),
    ...fetchTraps(res),
    ...statusTraps(res),
  ];
}
