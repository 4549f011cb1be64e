/*
 * Over 300 lines on purpose: this is the whole packet path of ports 67 and 4011 (decode, decide,
 * wait for `--decide-url`, send, count, log, emit), with one `finish` for every way out. What to
 * answer is policy.ts; the decision service is decide.ts.
 */
import type { CounterSink } from '../core/counters.js';
import { eventTime, type DecidedBy, type EventSink } from '../core/events.js';
import type { LogFields, Logger, PeerLog } from '../core/logger.js';
import type { Datagrams, Peer } from '../net/datagram.js';
import { DhcpOption, MessageType } from '../wire/dhcp-constants.js';
import { ipOption, u8Option } from '../wire/dhcp-options.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../wire/dhcp-packet.js';
import { DecodeError, type DecodeErrorCode } from '../wire/reader.js';
import { checkAccess } from './acl.js';
import type { BootPolicy } from './boot.js';
import { describeClient, uuidText, type PxeClient } from './client.js';
import type { ClientTable } from './clients.js';
import { DECIDE_LABEL, type Decided, type Decider, type DecideQuestion } from './decide.js';
import {
  ACCEPTED_TYPES,
  decideBootAck,
  decideProxyOffer,
  pxeClientOf,
  type Decision,
  type Destination,
  type ServerContext,
} from './policy.js';

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
  /** Where offer, ack, denied and ignored events go; `active` false (or absent) skips building them. */
  events?: EventSink & { readonly active: boolean };
  /** Clients seen, with the addresses they take (for TFTP, HTTP and `/status`). */
  clients?: ClientTable;
  /** `--decide-url` in force, if any; a function so a reload takes effect on the next packet. */
  decider?: () => Decider | undefined;
}

/** Refusals that are a policy's word about a client (`denied` events); other ignores are `ignored`. */
const DENIALS = new Set<string>(['denied', 'not-allowed', 'decide-denied', 'decide-unavailable']);
const ZERO_IP = '0.0.0.0';

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

/** One request's decision under a policy: the port says which. @throws DecodeError (a malformed option 43) */
function decide(
  port: ResponderPort,
  req: DhcpPacket,
  from: Peer,
  ctx: ServerContext,
  policy: BootPolicy,
  client?: PxeClient,
): Decision {
  return port === 'dhcp'
    ? decideProxyOffer(req, ctx, policy, client)
    : decideBootAck(req, { address: from.address, port: from.port }, ctx, policy, client);
}

/** The client's own address, where the request tells it: ciaddr, else the sender when not relayed. */
function clientIp(req: DhcpPacket, from: Peer): string | undefined {
  if (req.clientIp !== ZERO_IP) return req.clientIp;
  return req.relayIp === ZERO_IP && from.address !== ZERO_IP ? from.address : undefined;
}

/**
 * A PXE client's DHCPREQUEST to the real DHCP server (broadcast, so port 67 hears it) names the
 * address it takes (option 50): learnt, so TFTP and HTTP requests from it can be put to its MAC.
 */
function learnAddress(req: DhcpPacket, policy: BootPolicy, clients: ClientTable): void {
  if (u8Option(req.options, DhcpOption.MESSAGE_TYPE) !== MessageType.REQUEST) return;
  const client = describeClient(req, policy.httpBoot === true);
  if (typeof client === 'string') return;
  const ip = ipOption(req.options, DhcpOption.REQUESTED_IP) ?? req.clientIp;
  if (ip !== ZERO_IP) clients.note(client.mac, { arch: client.archName, ip });
}

/** Send or drop, count, log, and tell the clients table and the event sinks. */
function finish(
  port: ResponderPort,
  out: ReplySender,
  deps: ResponderDeps,
  req: DhcpPacket,
  from: Peer,
  decision: Decision,
  decidedBy: DecidedBy,
): void {
  const portNumber = port === 'dhcp' ? 67 : 4011;
  const ip = clientIp(req, from);
  if (decision.kind === 'ignore') {
    deps.counters.count(decision.reason);
    const level = decision.level ?? 'debug';
    // Most packets on a LAN are not ours: build their line only when it can be written.
    if (deps.lines.base.isLevelEnabled(level)) {
      deps.lines.line(level, 'ignored', {
        port,
        from: `${from.address}:${from.port}`,
        reason: decision.reason,
        ...(decision.detail ? { detail: decision.detail } : {}),
        ...(decision.client ? { mac: decision.client.mac, arch: decision.client.archName } : {}),
      });
    }
    const c = decision.client;
    if (c) deps.clients?.note(c.mac, { arch: c.archName, last: { port: portNumber, refused: decision.reason } });
    if (deps.events?.active) {
      deps.events.emit({
        type: DENIALS.has(decision.reason) ? 'denied' : 'ignored',
        time: eventTime(),
        ...(c ? { mac: c.mac } : {}),
        ...(ip !== undefined ? { ip } : { ip: from.address }),
        port: portNumber,
        reason: decision.reason,
        ...(decision.detail ? { detail: decision.detail } : {}),
      });
    }
    return;
  }
  out.send(encodeDhcp(decision.reply), decision.to);
  deps.counters.count(COUNTER[port]);
  const { client, choice } = decision;
  deps.clients?.note(client.mac, {
    arch: client.archName,
    ...(ip !== undefined ? { ip } : {}),
    ...(client.userClass !== undefined ? { userClass: client.userClass } : {}),
    last: { port: portNumber, file: choice.file, rule: choice.rule, decidedBy },
  });
  if (deps.events?.active) {
    deps.events.emit({
      type: port === 'dhcp' ? 'offer' : 'ack',
      time: eventTime(),
      mac: client.mac,
      ...(ip !== undefined ? { ip } : {}),
      port: portNumber,
      arch: client.archName,
      file: choice.file,
      'next-server': decision.reply.nextServer,
      rule: choice.rule,
      'decided-by': decidedBy,
    });
  }
  // dgram sends on the next tick; logging after I/O keeps winston's formatting out of the
  // reply's latency (it cost the logged replies a tenth of a millisecond and more).
  const extra = deps.lines.reserve('info');
  if (extra) setImmediate(logAnswer, deps.lines.base, port, decision, extra);
}

/** A packet that could not be handled: malformed (counted, debug) or our own bug (counted, error). */
function failed(port: ResponderPort, deps: ResponderDeps, from: Peer, err: unknown): void {
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

/** decode → decide → encode → send, for one datagram. Never throws. */
export function handleDatagram(
  port: ResponderPort,
  out: ReplySender,
  ctx: ServerContext,
  deps: ResponderDeps,
  msg: Buffer,
  from: Peer,
): void {
  try {
    const req = decodeDhcp(msg);
    const policy = deps.policy();
    if (port === 'dhcp' && deps.clients) learnAddress(req, policy, deps.clients);
    const decider = deps.decider?.();
    if (decider) return askDecider(decider, port, out, ctx, deps, req, from, policy);
    finish(port, out, deps, req, from, decide(port, req, from, ctx, policy), 'rules');
  } catch (err) {
    failed(port, deps, from, err);
  }
}

/** The latest packet waiting for each question out: the one answered when the decision lands. */
interface Waiter {
  port: ResponderPort;
  out: ReplySender;
  ctx: ServerContext;
  deps: ResponderDeps;
  req: DhcpPacket;
  from: Peer;
}
const waiting = new WeakMap<Decider, Map<string, Waiter>>();

/**
 * With `--decide-url`: a PXE client that passes allow/deny is asked about. A cached outcome is
 * used at once; otherwise this client alone waits, and nothing else does: the packet path goes
 * on, and the answer is sent when the decision lands (within `--decide-timeout`). A retransmission
 * meanwhile joins the same request and replaces the waiting packet, so one answer goes out.
 */
function askDecider(
  decider: Decider,
  port: ResponderPort,
  out: ReplySender,
  ctx: ServerContext,
  deps: ResponderDeps,
  req: DhcpPacket,
  from: Peer,
  policy: BootPolicy,
): void {
  const client = pxeClientOf(req, ACCEPTED_TYPES[port], policy);
  // Not a PXE request we answer, or refused by allow/deny: the decision URL is not asked.
  if ('kind' in client || checkAccess(policy, client)) {
    return finish(port, out, deps, req, from, decide(port, req, from, ctx, policy), 'rules');
  }
  const question: DecideQuestion = {
    client,
    port: port === 'dhcp' ? 67 : 4011,
    ...(ctx.interfaceName !== undefined ? { interface: ctx.interfaceName } : {}),
    ...(req.relayIp !== ZERO_IP ? { relay: req.relayIp } : {}),
  };
  const outcome = decider.ask(question);
  if (!(outcome instanceof Promise))
    return answerDecided(decider, outcome, client, { port, out, ctx, deps, req, from });
  let queue = waiting.get(decider);
  if (!queue) waiting.set(decider, (queue = new Map<string, Waiter>()));
  const key = decider.keyOf(question);
  const first = !queue.has(key);
  queue.set(key, { port, out, ctx, deps, req, from });
  if (!first) return;
  void outcome.then((d) => {
    const w = queue.get(key);
    queue.delete(key);
    if (w) answerDecided(decider, d, client, w);
  });
}

/**
 * The policy with a decided answer in it, made once per cached answer and policy in force: a cache
 * hit reuses it rather than copying the policy for every packet.
 */
const decidedPolicies = new WeakMap<Decided, { base: BootPolicy; policy: BootPolicy }>();

function withDecided(policy: BootPolicy, d: Extract<Decided, { kind: 'answer' }>): BootPolicy {
  const made = decidedPolicies.get(d);
  if (made?.base === policy) return made.policy;
  const decided = { ...policy, decided: d };
  decidedPolicies.set(d, { base: policy, policy: decided });
  return decided;
}

/** Answer (or not) one waiting request by what the decision URL said. Never throws. */
function answerDecided(decider: Decider, d: Decided, client: PxeClient, w: Waiter): void {
  const { port, out, ctx, deps, req, from } = w;
  try {
    const policy = deps.policy();
    if (d.kind === 'answer') {
      const decision = decide(port, req, from, ctx, withDecided(policy, d), client);
      const by = decision.kind === 'reply' && decision.choice.rule.includes(DECIDE_LABEL) ? 'decide-url' : 'rules';
      return finish(port, out, deps, req, from, decision, by);
    }
    if (d.kind === 'deny') {
      const detail = `${DECIDE_LABEL} answered ${d.status}`;
      const refusal: Decision = { kind: 'ignore', reason: 'decide-denied', client, detail, level: 'info' };
      return finish(port, out, deps, req, from, refusal, 'decide-url');
    }
    const why = `${DECIDE_LABEL} ${d.why}${d.detail ? ` (${d.detail})` : ''}`;
    if (decider.settings.fallback === 'deny') {
      const refusal: Decision = { kind: 'ignore', reason: 'decide-unavailable', client, detail: why, level: 'warn' };
      return finish(port, out, deps, req, from, refusal, 'fallback');
    }
    const decision = decide(port, req, from, ctx, policy, client);
    const noted: Decision =
      decision.kind === 'reply'
        ? { ...decision, choice: { ...decision.choice, rule: `${decision.choice.rule}, after ${why}` } }
        : { ...decision, detail: `${decision.detail ?? ''}${decision.detail ? ', ' : ''}after ${why}` };
    finish(port, out, deps, req, from, noted, 'fallback');
  } catch (err) {
    failed(port, deps, from, err);
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
