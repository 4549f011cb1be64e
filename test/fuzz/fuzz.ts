/**
 * Fuzz harness: structured mutations of captured and built packets, and random bytes, through
 * decode → decide → encode of DHCP and TFTP. Anything thrown but DecodeError is a crash; so is a
 * reply that breaks the non-interference invariants. Inputs that reach a new outcome join the pool
 * of mutation seeds (bounded), and can be saved to test/fuzz/corpus/ for the replay test.
 *
 *   node --import tsx test/fuzz/fuzz.ts [--count N] [--seconds S] [--seed N] [--save-corpus]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Rng, mutate, type Protocol } from './mutate.js';
import { seeds } from './seeds.js';
import { runTarget, type FuzzReply, type Outcome } from './targets.js';

export const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));
const POOL_MAX = 400;
const CRASHES_KEPT = 50;

export interface FuzzOptions {
  seed: number;
  /** Stop after this many inputs… */
  count?: number;
  /** …or after this many seconds, whichever comes first. */
  seconds?: number;
  /** Called with each generated input (e.g. to send it over a socket too). */
  onInput?: (protocol: Protocol, input: Buffer) => void;
  /** Collects every reply the policy produced. */
  replies?: FuzzReply[];
}

export interface Crash {
  protocol: Protocol;
  input: Buffer;
  error: string;
}

export interface FuzzResult {
  inputs: Record<Protocol, number>;
  total: number;
  crashes: Crash[];
  crashCount: number;
  /** Each outcome seen, with the first input that reached it. */
  firsts: Map<string, { protocol: Protocol; input: Buffer }>;
  ms: number;
}

/** Run the fuzzer until the count or time limit. Never throws for a crash: it is in the result. */
export function runFuzz(o: FuzzOptions): FuzzResult {
  const rng = new Rng(o.seed);
  const pools: Record<Protocol, Buffer[]> = { dhcp: seeds('dhcp'), tftp: seeds('tftp') };
  const inputs: Record<Protocol, number> = { dhcp: 0, tftp: 0 };
  const firsts = new Map<string, { protocol: Protocol; input: Buffer }>();
  const crashes: Crash[] = [];
  let crashCount = 0;
  const start = Date.now();
  const deadline = o.seconds !== undefined ? start + o.seconds * 1000 : Infinity;
  const limit = o.count ?? Infinity;
  let total = 0;
  while (total < limit && (total % 1024 !== 0 || Date.now() < deadline)) {
    const protocol: Protocol = rng.int(3) === 0 ? 'tftp' : 'dhcp';
    const pool = pools[protocol];
    const input = mutate(rng, protocol, rng.pick(pool));
    total++;
    inputs[protocol]++;
    o.onInput?.(protocol, input);
    let outcome: Outcome;
    try {
      outcome = runTarget(protocol, input, rng.u32(), o.replies);
    } catch (err) {
      crashCount++;
      if (crashes.length < CRASHES_KEPT) crashes.push({ protocol, input, error: (err as Error).stack ?? String(err) });
      continue;
    }
    const key = `${protocol} ${outcome}`;
    if (!firsts.has(key)) {
      firsts.set(key, { protocol, input });
      // Inputs reaching a new outcome seed later mutations; the pool is capped.
      if (pool.length < POOL_MAX) pool.push(input);
      else pool[rng.int(POOL_MAX)] = input;
    }
  }
  return { inputs, total, crashes, crashCount, firsts, ms: Date.now() - start };
}

/** One corpus file: a `#` header line naming the protocol, then hex, 32 bytes a line. */
export function corpusText(protocol: Protocol, note: string, input: Buffer): string {
  const hex = input.toString('hex').match(/.{1,64}/g) ?? [];
  return `# ${protocol} ${note}\n${hex.join('\n')}\n`;
}

export interface CorpusCase {
  name: string;
  protocol: Protocol;
  input: Buffer;
}

/** Every case in test/fuzz/corpus/. */
export function loadCorpus(dir = CORPUS_DIR): CorpusCase[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((name) => {
      const [head = '', ...lines] = readFileSync(`${dir}${name}`, 'utf8').split('\n');
      const protocol = head.split(' ')[1] === 'tftp' ? 'tftp' : 'dhcp';
      return { name, protocol, input: Buffer.from(lines.join('').replace(/\s+/g, ''), 'hex') };
    });
}

function slug(text: string): string {
  return text
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase()
    .slice(0, 80);
}

function saveCorpus(r: FuzzResult): number {
  mkdirSync(CORPUS_DIR, { recursive: true });
  let n = 0;
  for (const [key, { protocol, input }] of r.firsts) {
    writeFileSync(`${CORPUS_DIR}${slug(key)}.hex`, corpusText(protocol, `first input with outcome: ${key}`, input));
    n++;
  }
  r.crashes.forEach((c, i) => {
    writeFileSync(
      `${CORPUS_DIR}crash-${c.protocol}-${i}.hex`,
      corpusText(c.protocol, `crash: ${c.error.split('\n')[0]}`, c.input),
    );
  });
  return n;
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
}

function main(args: string[]): void {
  const count = argValue(args, '--count');
  const seconds = argValue(args, '--seconds');
  const seed = Number(argValue(args, '--seed') ?? Date.now() % 2 ** 31);
  const r = runFuzz({
    seed,
    ...(count ? { count: Number(count) } : {}),
    ...(seconds ? { seconds: Number(seconds) } : {}),
  });
  const rate = Math.round((r.total / Math.max(1, r.ms)) * 1000);
  process.stdout.write(
    `fuzz: ${r.total} inputs (dhcp ${r.inputs.dhcp}, tftp ${r.inputs.tftp}) in ${(r.ms / 1000).toFixed(1)} s, ` +
      `${rate}/s, seed ${seed}, ${r.firsts.size} distinct outcomes, ${r.crashCount} crashes\n`,
  );
  if (args.includes('--save-corpus'))
    process.stdout.write(`fuzz: saved ${saveCorpus(r)} corpus cases to ${CORPUS_DIR}\n`);
  for (const c of r.crashes.slice(0, 5))
    process.stdout.write(`crash (${c.protocol}) ${c.input.toString('hex')}\n${c.error}\n`);
  process.exitCode = r.crashCount > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
