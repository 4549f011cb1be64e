import { archName, canonicalArch } from '../wire/arch.js';
import type { PxeClient } from './client.js';

/**
 * How boot answers point at our own HTTP server. Rules and the script URLs we hand out write our
 * server as `http:///PATH` (a URL with an empty host, as in `file:///`); the responder expands it
 * per interface into `http://ADDRESS[:PORT]/PATH`, since our address differs from one LAN to the next.
 */
export const OWN_HTTP = 'http:///';

/** Where generated iPXE scripts live on our HTTP server: `/pxe-pdhcp/boot/<mac>.ipxe?arch=N[&uuid=HEX]`. */
export const SCRIPT_PREFIX = '/pxe-pdhcp/boot/';

/** Names that are URLs (`http://…`, `tftp://…`) are fetched as they are, not from a root. */
export function isUrl(name: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(name);
}

/** True for `http:///…`: a URL on our own HTTP server. */
export function isOwnHttp(name: string): boolean {
  return name.startsWith(OWN_HTTP);
}

/**
 * Expand `http:///PATH` into a URL on our HTTP server at `hostPort` (`10.0.0.5` or `10.0.0.5:8080`).
 * Other names are returned as they are; so is `http:///…` when no HTTP server runs (`hostPort`
 * undefined), which the command line refuses beforehand.
 */
export function expandOwnHttp(name: string, hostPort: string | undefined): string {
  if (!isOwnHttp(name) || hostPort === undefined) return name;
  return `http://${hostPort}/${name.slice(OWN_HTTP.length)}`;
}

/** Host and port as a URL writes them: the port is left out when it is 80. */
export function httpHostPort(address: string, port: number): string {
  return port === 80 ? address : `${address}:${port}`;
}

const macPath = (mac: string): string => mac.replaceAll(':', '-');

/**
 * The script URL handed to an iPXE client whose rule has a kernel, on our own server (`http:///`).
 * It carries what the rules can match on (MAC, arch, UUID), so the HTTP server can choose again.
 */
export function scriptUrl(client: PxeClient): string {
  const uuid = client.uuid ? `&uuid=${client.uuid.subarray(1).toString('hex')}` : '';
  return `${OWN_HTTP}${SCRIPT_PREFIX.slice(1)}${macPath(client.mac)}.ipxe?arch=${client.arch}${uuid}`;
}

/** What a script request names: the requester as boot policy sees it. */
export interface ScriptRequest {
  mac: string;
  arch: number;
  uuid?: Buffer;
}

/**
 * Parse the path (after the prefix) and query of a script request, or null when it is not one.
 * Pure; accepts exactly what `scriptUrl` writes.
 */
export function parseScriptRequest(path: string, query: string): ScriptRequest | null {
  if (!path.startsWith(SCRIPT_PREFIX)) return null;
  const m = /^((?:[0-9a-f]{2}-){5}[0-9a-f]{2})\.ipxe$/.exec(path.slice(SCRIPT_PREFIX.length).toLowerCase());
  if (!m) return null;
  const params = new URLSearchParams(query);
  const archText = params.get('arch') ?? '0';
  if (!/^\d{1,5}$/.test(archText) || Number(archText) > 0xffff) return null;
  const uuidText = params.get('uuid');
  if (uuidText !== null && !/^[0-9a-f]{32}$/i.test(uuidText)) return null;
  return {
    mac: m[1]!.replaceAll('-', ':'),
    arch: canonicalArch(Number(archText)),
    ...(uuidText !== null ? { uuid: Buffer.concat([Buffer.of(0), Buffer.from(uuidText, 'hex')]) } : {}),
  };
}

/**
 * The client a script request stands for: an iPXE with that MAC, arch and UUID. Its vendor class is
 * rebuilt as `PXEClient:Arch:NNNNN` (what iPXE sends, without the UNDI part), so `vendor-class=`
 * conditions of that length still match.
 */
export function scriptClient(r: ScriptRequest): PxeClient {
  return {
    mac: r.mac,
    arch: r.arch,
    archName: archName(r.arch),
    archAssumed: false,
    vendorClass: `PXEClient:Arch:${String(r.arch).padStart(5, '0')}`,
    userClass: 'iPXE',
    ...(r.uuid ? { uuid: r.uuid } : {}),
    isIpxe: true,
  };
}

/** Option 60 of UEFI HTTP Boot firmware begins with this (EDK2 `HttpBootDhcp4.c`); our offer echoes it. */
export const HTTP_CLIENT_CLASS = 'HTTPClient';
