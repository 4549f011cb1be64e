import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { decodeDhcp } from '../../src/wire/dhcp-packet.js';
import { until } from '../helpers/daemon.js';
import { requestBytes } from '../helpers/packets.js';
import {
  listeningPorts,
  loopbackArgs,
  startDaemonProcess,
  stopDaemon,
  type DaemonProcess,
} from '../helpers/process.js';
import { loadCorpus, runFuzz } from '../fuzz/fuzz.js';
import { replyProblems } from '../fuzz/invariants.js';
import { runTarget, type FuzzReply } from '../fuzz/targets.js';

/** In-process budget for CI; `make fuzz` runs the long version. */
const FUZZ_SECONDS = 25;
const SOCKET_INPUTS = 30_000;

describe('fuzz: decode → decide → encode never throws anything but DecodeError', () => {
  it(`survives ${FUZZ_SECONDS} s of mutated and random DHCP and TFTP input`, () => {
    // A new seed each run, printed, and replayable: FUZZ_SEED=N make test (or make fuzz).
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
    console.log(`# fuzz seed ${seed} (replay with FUZZ_SEED=${seed})`);
    const r = runFuzz({ seed, seconds: FUZZ_SECONDS });
    const first = r.crashes[0];
    assert.equal(
      r.crashCount,
      0,
      first ? `seed ${seed}: crash on ${first.protocol} ${first.input.toString('hex')}:\n${first.error}` : '',
    );
    assert.ok(r.inputs.dhcp > 10_000 && r.inputs.tftp > 5_000, `too few inputs: ${JSON.stringify(r.inputs)}`);
    // The mutations must reach past the decoder into policy: replies and several ignore reasons.
    const outcomes = [...r.firsts.keys()].join('\n');
    assert.match(outcomes, /dhcp:reply:bypass/);
    assert.match(outcomes, /proxy:reply:/);
    assert.match(outcomes, /ignore:not-pxe-client/);
    assert.match(outcomes, /tftp tftp:rrq:options/);
  });

  it('every reply the fuzzer provoked is a proxy answer: yiaddr 0, no address options', () => {
    const replies: FuzzReply[] = [];
    const r = runFuzz({ seed: 12345, count: 60_000, replies });
    assert.equal(r.crashCount, 0);
    assert.ok(replies.length > 1000, `only ${replies.length} replies`);
    for (const { bytes } of replies) assert.deepEqual(replyProblems(bytes), []);
  });

  it('replays the corpus in test/fuzz/corpus/ without a crash', () => {
    const cases = loadCorpus();
    assert.ok(cases.length >= 20, `corpus has only ${cases.length} cases`);
    for (const c of cases) {
      for (let variant = 0; variant < 6; variant++) {
        assert.doesNotThrow(
          () => runTarget(c.protocol, c.input, variant),
          `corpus case ${c.name} (variant ${variant})`,
        );
      }
    }
  });
});

describe('fuzz over sockets: the running daemon keeps answering', () => {
  let daemon: DaemonProcess;
  let client: Socket;
  const received: Buffer[] = [];
  let ports: { dhcp: number; proxy: number };

  before(async () => {
    client = createSocket('udp4');
    client.on('message', (m) => received.push(m));
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    daemon = startDaemonProcess(loopbackArgs(client.address().port));
    ports = await listeningPorts(daemon);
  });

  after(async () => {
    client.close();
    await stopDaemon(daemon);
  });

  it(`takes ${SOCKET_INPUTS} fuzzed datagrams on 67 and 4011, then still answers a valid DISCOVER and 4011 REQUEST`, async () => {
    let sent = 0;
    const batch: Promise<void>[] = [];
    const send = (input: Buffer, port: number): void => {
      batch.push(new Promise((resolve) => client.send(input, port, '127.0.0.1', () => resolve())));
    };
    runFuzz({
      seed: 777,
      count: SOCKET_INPUTS * 1.5,
      onInput: (protocol, input) => {
        if (protocol !== 'dhcp' || input.length === 0) return;
        send(input, sent++ % 2 === 0 ? ports.dhcp : ports.proxy);
      },
    });
    // Paced in chunks so the loopback queue is not simply overrun.
    for (let i = 0; i < batch.length; i += 500) {
      await Promise.all(batch.slice(i, i + 500));
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(sent >= SOCKET_INPUTS * 0.9, `sent ${sent}`);

    // A valid DISCOVER on 67 and a valid REQUEST on 4011, sent after all the fuzz: each socket reads
    // its queue in order, so their answers mean the daemon has taken every fuzzed datagram.
    const before = received.length;
    const answerTo = (xid: number): Buffer | undefined =>
      received.slice(before).find((m) => m.length >= 8 && m.readUInt32BE(4) === xid);
    const discoverXid = 0x0f0f1234;
    const requestXid = 0x0f0f1235;
    send(requestBytes({ xid: discoverXid, type: MessageType.DISCOVER }), ports.dhcp);
    send(requestBytes({ xid: requestXid, type: MessageType.REQUEST, ciaddr: '127.0.0.1', arch: 7 }), ports.proxy);
    await until(() => answerTo(discoverXid) !== undefined, 3000, 'an offer to a valid DISCOVER after the fuzz traffic');
    await until(
      () => answerTo(requestXid) !== undefined,
      3000,
      'an ACK to a valid 4011 REQUEST after the fuzz traffic',
    );
    assert.equal(daemon.child.exitCode, null, `daemon died:\n${daemon.output()}`);
    const fuzzReplies = received.filter((m) => m !== answerTo(discoverXid) && m !== answerTo(requestXid));
    assert.ok(fuzzReplies.length > 100, `the fuzz traffic provoked only ${fuzzReplies.length} replies`);
    for (const m of received) assert.deepEqual(replyProblems(m), []);
    assert.equal(decodeDhcp(answerTo(discoverXid)!).options.get(DhcpOption.MESSAGE_TYPE)?.[0], MessageType.OFFER);
    assert.equal(decodeDhcp(answerTo(requestXid)!).options.get(DhcpOption.MESSAGE_TYPE)?.[0], MessageType.ACK);
    assert.doesNotMatch(daemon.output(), /handler failed|internal-error|unexpected error/);
  });
});
