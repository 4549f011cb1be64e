import type { CounterSink } from '../core/counters.js';
import type { LogFields, Logger, PeerLog } from '../core/logger.js';
import type { Datagrams, Peer } from '../net/datagram.js';
import { decodeDhcp, encodeDhcp } from '../wire/dhcp-packet.js';
import { DecodeError, type DecodeErrorCode } from '../wire/reader.js';
import type { BootPolicy } from './boot.js';
import { uuidText } from './client.js';
import { decideBootAck, decideProxyOffer, type Decision, type Destination, type ServerContext } from './policy.js';

/** Which of our two ports a socket serves. */
export type ResponderPort = 'dhcp' | 'proxy';

/** Every counter the responder keeps. */
export type DhcpCounter =
  'offer-sent' | 'ack-sent' | 'internal-error' | DecodeErrorCode | Extract<Decision, { kind: 'ignore' }>['reason'];

export interface ResponderDeps {
  /** Every line here is caused by a packet, so all of them go through the peer-line cap. */
  lines: PeerLog;
  counters: CounterSink<DhcpCounter>;
  /** The policy in force; a function so a reload takes effect on the next packet. */
  policy: () => BootPolicy;
}

const COUNTER: Record<ResponderPort, DhcpCounter> = { dhcp: 'offer-sent', proxy: 'ack-sent' };

/** The info line of one answered client. */
function logAnswer(
  log: Logger,
  port: ResponderPort,
  decision: Extract<Decision, { kind: 'reply' }>,
  extra: LogFields,
): void {
  const { to, client, choice } = decision;
  log.info(port === 'dhcp' ? 'proxy offer' : 'boot ack', {
    mac: client.mac,
    arch: client.archName,
    vendor: client.vendorClass,
    ...(client.userClass !== undefined ? { 'user-class': client.userClass } : {}),
    ...(client.uuid ? { uuid: uuidText(client.uuid) } : {}),
    port: port === 'dhcp' ? 67 : 4011,
    file: choice.file,
    'next-server': decision.reply.nextServer,
    shape: choice.shape,
    rule: choice.rule,
    to: `${to.address}:${to.port}`,
    ...extra,
  });
}

/** decode → decide → encode → send, for one datagram. Never throws. */
export function handleDatagram(
  port: ResponderPort,
  out: ReplySender,
  ctx: ServerContext,
  deps: ResponderDeps,
  msg: Buffer,
  from: Peer,
): void {
  let decision: Decision;
  try {
    const req = decodeDhcp(msg);
    const policy = deps.policy();
    decision =
      port === 'dhcp'
        ? decideProxyOffer(req, ctx, policy)
        : decideBootAck(req, { address: from.address, port: from.port }, ctx, policy);
    if (decision.kind === 'ignore') {
      deps.counters.count(decision.reason);
      deps.lines.line(decision.level ?? 'debug', 'ignored', {
        port,
        from: `${from.address}:${from.port}`,
        reason: decision.reason,
        ...(decision.detail ? { detail: decision.detail } : {}),
        ...(decision.client ? { mac: decision.client.mac, arch: decision.client.archName } : {}),
      });
      return;
    }
    out.send(encodeDhcp(decision.reply), decision.to);
    deps.counters.count(COUNTER[port]);
    // dgram sends on the next tick; logging after I/O keeps winston's formatting out of the
    // reply's latency (it cost the logged replies a tenth of a millisecond and more).
    const extra = deps.lines.reserve('info');
    if (extra) setImmediate(logAnswer, deps.lines.base, port, decision, extra);
  } catch (err) {
    if (err instanceof DecodeError) {
      deps.counters.count(err.code);
      deps.lines.line('debug', 'dropped malformed packet', {
        port,
        from: `${from.address}:${from.port}`,
        reason: err.code,
        detail: err.message,
      });
      return;
    }
    // Our own bug, met while handling one packet: that packet is dropped, the daemon serves on.
    deps.counters.count('internal-error');
    deps.lines.line('error', 'handler failed', {
      port,
      from: `${from.address}:${from.port}`,
      error: String(err),
    });
  }
}

/** Serve one socket: every datagram goes through handleDatagram, every reply out of the same socket. */
export function attachResponder(port: ResponderPort, socket: Datagrams, ctx: ServerContext, deps: ResponderDeps): void {
  const out: ReplySender = { send: (reply, to) => socket.send(reply, 0, reply.length, to) };
  socket.onMessage((msg, from) => handleDatagram(port, out, ctx, deps, msg, from));
}

/** Where replies leave from. */
export interface ReplySender {
  send(reply: Buffer, to: Destination): void;
}
