import { DATA_HEADER_LEN, writeDataHeader } from '../wire/tftp-packet.js';

/** What chunks are read from: an open file, or its netascii view. */
export interface BlockSource {
  readonly size: number;
  readv(buffers: Buffer[], position: number): Promise<number>;
  /** Still arriving from upstream (src/files/cache.ts): a read waits for all its bytes, so read small. */
  readonly arriving?: boolean;
}

/** Most bytes per file read: few syscalls, bounded memory per transfer. */
const CHUNK_BYTES = 256 * 1024;
/** Fewest bytes per file read, however many transfers share the read-ahead budget. */
const MIN_CHUNK_BYTES = 16 * 1024;

/**
 * Bytes per read for a transfer starting beside `transfers` others, so that all of them together
 * hold about `budget` (each holds up to four chunks: two in use, two spare).
 */
export function readAheadChunk(budget: number, transfers: number): number {
  return Math.max(MIN_CHUNK_BYTES, Math.min(CHUNK_BYTES, Math.floor(budget / (4 * Math.max(1, transfers)))));
}
/** For a file still arriving: the first block goes out once this much is in, not 256 KiB. */
const ARRIVING_CHUNK_BYTES = 16 * 1024;
/** Linux IOV_MAX: a readv with more buffers would be cut short. */
const MAX_CHUNK_BLOCKS = 1024;
/** Acknowledged chunk buffers kept for reuse. */
const SPARE_BUFFERS = 2;

/** Packets laid out back to back: [DATA header | block] × blocks, `stride` = 4 + blockSize apart. */
export interface Chunk {
  readonly index: number;
  readonly buf: Buffer;
  ready: boolean;
}

/**
 * Reads a file ahead of the protocol, in chunks of whole DATA packets (header included), so that a
 * run of blocks is one send from one buffer and lockstep never waits for the disk. Blocks are
 * numbered from 1 on the absolute scale (no 16-bit wrap here). Knows nothing of ACKs or timers.
 */
export class ChunkReader {
  readonly size: number;
  readonly blockSize: number;
  readonly stride: number;
  /** RFC 1350 §6: a block shorter than blksize ends the file, so an exact multiple ends with an empty one. */
  readonly totalBlocks: number;
  readonly blocksPerChunk: number;
  readonly #source: BlockSource;
  readonly #chunks = new Map<number, Chunk>();
  readonly #spare: Buffer[] = [];
  readonly #onReady: (chunk: Chunk) => void;
  readonly #onError: () => void;
  #closed = false;

  /**
   * @param onReady a chunk finished reading (called only while open)
   * @param onError a read failed or came back short: the file changed under us
   */
  constructor(
    source: BlockSource,
    blockSize: number,
    window: number,
    onReady: (c: Chunk) => void,
    onError: () => void,
    chunkBytes = CHUNK_BYTES,
  ) {
    this.#source = source;
    this.size = source.size;
    this.blockSize = blockSize;
    this.stride = DATA_HEADER_LEN + blockSize;
    this.totalBlocks = Math.floor(source.size / blockSize) + 1;
    const byBytes = Math.ceil((source.arriving ? ARRIVING_CHUNK_BYTES : chunkBytes) / blockSize);
    this.blocksPerChunk = Math.min(MAX_CHUNK_BLOCKS, Math.max(byBytes, 2 * window));
    this.#onReady = onReady;
    this.#onError = onError;
  }

  /** Bytes of data in `block` (0 for the empty last block of an exact multiple). */
  dataLength(block: number): number {
    return Math.max(0, Math.min(this.blockSize, this.#source.size - (block - 1) * this.blockSize));
  }

  /** The chunk holding `block`, reading it if nobody has yet (it may not be ready). */
  chunkOf(block: number): Chunk {
    const index = Math.floor((block - 1) / this.blocksPerChunk);
    return this.#chunks.get(index) ?? this.#load(index);
  }

  /** First block of `chunk`. */
  firstOf(chunk: Chunk): number {
    return chunk.index * this.blocksPerChunk + 1;
  }

  /** Start reading the chunk after the one holding `lastSent`, unless it is read or past the end. */
  prefetch(lastSent: number): void {
    const index = Math.floor((lastSent - 1) / this.blocksPerChunk) + 1;
    if (index * this.blocksPerChunk < this.totalBlocks && !this.#chunks.has(index)) this.#load(index);
  }

  /** Free the chunks wholly at or before `acked`; returns the next block at which to call again. */
  dropThrough(acked: number): number {
    for (const [index, chunk] of this.#chunks) {
      if ((index + 1) * this.blocksPerChunk <= acked) {
        this.#chunks.delete(index);
        if (chunk.ready && this.#spare.length < SPARE_BUFFERS) this.#spare.push(chunk.buf);
      }
    }
    return (Math.floor(acked / this.blocksPerChunk) + 1) * this.blocksPerChunk;
  }

  /** Drop every buffer; reads still in flight are ignored when they land. */
  close(): void {
    this.#closed = true;
    this.#chunks.clear();
    this.#spare.length = 0;
  }

  #load(index: number): Chunk {
    const first = index * this.blocksPerChunk + 1;
    const count = Math.min(this.blocksPerChunk, this.totalBlocks - first + 1);
    const reuse = this.#spare.pop();
    const buf = reuse && reuse.length >= count * this.stride ? reuse : Buffer.allocUnsafeSlow(count * this.stride);
    const chunk: Chunk = { index, buf, ready: false };
    this.#chunks.set(index, chunk);
    const views: Buffer[] = [];
    let expected = 0;
    for (let i = 0; i < count; i++) {
      const at = i * this.stride;
      writeDataHeader(buf, first + i, at);
      const len = this.dataLength(first + i);
      expected += len;
      if (len > 0) views.push(buf.subarray(at + DATA_HEADER_LEN, at + DATA_HEADER_LEN + len));
    }
    if (views.length === 0) {
      chunk.ready = true;
      return chunk;
    }
    const landed = (n: number): void => {
      if (this.#closed || this.#chunks.get(index) !== chunk) return;
      if (n !== expected) return this.#onError();
      chunk.ready = true;
      this.#onReady(chunk);
    };
    this.#source.readv(views, (first - 1) * this.blockSize).then(landed, () => {
      if (!this.#closed) this.#onError();
    });
    return chunk;
  }
}
