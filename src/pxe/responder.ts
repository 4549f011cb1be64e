import type { RemoteInfo, Socket } from 'node:dgram';
import type { Logger } from '../core/logger.js';
import { RateLimiter, type Stats } from '../core/counters.js';
import { decodeDhcp, encodeDhcp } from '../wire/dhcp-packet.js';
import { DecodeError } from '../wire/reader.js';
import type { BootPolicy } from './boot.js';
import { uuidText } from './client.js';
import { decideBootAck, decideProxyOffer, type Decision, type Destination, type ServerContext } from './policy.js';

/** Which of our two ports a socket serves. */
export type ResponderPort = 'dhcp' | 'proxy';

export interface ResponderDeps {
  log: Logger;
  stats: Stats;
  /** The policy in force; a function so a reload takes effect on the next packet. */
  policy: () => BootPolicy;
  /** Caps per-client info lines (shared by all sockets). */
  answerLines: RateLimiter;
}

const COUNTER: Record<ResponderPort, string> = { dhcp: 'offer-sent', proxy: 'ack-sent' };

/** The info line of one answered client. */
function logAnswer(log: Logger, port: ResponderPort, decision: Extract<Decision, { kind: 'reply' }>): void {
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
  });
}

/** decode → decide → encode → send, for one datagram. Never throws. */
export function handleDatagram(
  port: ResponderPort,
  out: ReplySender,
  ctx: ServerContext,
  deps: ResponderDeps,
  msg: Buffer,
  from: RemoteInfo,
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
      deps.stats.count(decision.reason);
      const level = decision.level ?? 'debug';
      if (level === 'debug' ? deps.log.isLevelEnabled('debug') : deps.answerLines.take()) {
        deps.log.log(level, 'ignored', {
          port,
          from: `${from.address}:${from.port}`,
          reason: decision.reason,
          ...(decision.detail ? { detail: decision.detail } : {}),
          ...(decision.client ? { mac: decision.client.mac, arch: decision.client.archName } : {}),
        });
      }
      return;
    }
    out.send(encodeDhcp(decision.reply), decision.to);
    deps.stats.count(COUNTER[port]);
    // dgram sends on the next tick; logging after I/O keeps winston's formatting out of the
    // reply's latency (it cost the logged replies a tenth of a millisecond and more).
    if (deps.answerLines.take()) setImmediate(logAnswer, deps.log, port, decision);
  } catch (err) {
    if (err instanceof DecodeError) {
      deps.stats.count(err.code);
      deps.log.debug('dropped malformed packet', {
        port,
        from: `${from.address}:${from.port}`,
        reason: err.code,
        detail: err.message,
      });
      return;
    }
    deps.stats.count('internal-error');
    deps.log.error('handler failed', {
      port,
      from: `${from.address}:${from.port}`,
      error: (err as Error).stack ?? String(err),
    });
  }
}

/** Where replies leave from. */
export interface ReplySender {
  send(reply: Buffer, to: Destination): void;
}

/**
 * Replies go out of the socket the request came in on (so from its port, 67 or 4011). Broadcast
 * replies, the bulk of port 67's, may instead use `broadcast`: a sibling socket on the same port,
 * connected to the broadcast destination, which spares Node its per-send address handling.
 */
export function createReplySender(
  socket: Socket,
  deps: Pick<ResponderDeps, 'log' | 'stats'>,
  broadcast?: { socket: Socket; to: Destination },
): ReplySender {
  const onSent = (err: Error | null): void => {
    if (!err) return;
    deps.stats.count('send-error');
    deps.log.warn('send failed', { error: err.message });
  };
  const viaBroadcast = broadcast?.socket;
  const bto = broadcast?.to;
  return {
    send(reply, to) {
      if (viaBroadcast && to.port === bto!.port && to.address === bto!.address) viaBroadcast.send(reply, onSent);
      else socket.send(reply, to.port, to.address, onSent);
    },
  };
}

/** Serve one socket: every datagram goes through handleDatagram. */
export function attachResponder(
  port: ResponderPort,
  socket: Socket,
  out: ReplySender,
  ctx: ServerContext,
  deps: ResponderDeps,
): void {
  socket.on('message', (msg, from) => handleDatagram(port, out, ctx, deps, msg, from));
  socket.on('error', (err) => {
    deps.stats.count('socket-error');
    deps.log.error('socket error', { port, error: err.message });
  });
}
