import type { BlockSource } from './chunks.js';

/**
 * RFC 764 netascii as RFC 1350 uses it: LF → CR LF, CR → CR NUL. Converted as blocks are read, a
 * bounded slice at a time, so a large file costs neither memory nor a long stall of the event loop.
 */

const LF = 0x0a;
const CR = 0x0d;
/** Bytes of the original file read per step. */
const SLICE = 64 * 1024;

/** How many bytes `data` grows by in netascii: one per CR and per LF. Native scans, no byte loop. */
export function netasciiGrowth(data: Buffer): number {
  let n = 0;
  for (const byte of [LF, CR]) {
    for (let i = data.indexOf(byte); i !== -1; i = data.indexOf(byte, i + 1)) n++;
  }
  return n;
}

/**
 * Convert `data` into `out` from `at`; returns the bytes written. `out` must have room for
 * `data.length + netasciiGrowth(data)` bytes. Runs between line ends are copied whole.
 */
export function writeNetascii(data: Buffer, out: Buffer, at: number): number {
  let j = at;
  let from = 0;
  while (from < data.length) {
    const lf = data.indexOf(LF, from);
    const cr = data.indexOf(CR, from);
    const next = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
    if (next === -1) {
      j += data.copy(out, j, from);
      break;
    }
    j += data.copy(out, j, from, next);
    out[j++] = CR;
    out[j++] = data[next] === LF ? LF : 0;
    from = next + 1;
  }
  return j - at;
}

/** The whole-buffer form, for tests and small inputs. */
export function toNetascii(data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length + netasciiGrowth(data));
  writeNetascii(data, out, 0);
  return out;
}

/** Positional reads of the original file. */
export interface RawSource {
  readonly size: number;
  readv(buffers: Buffer[], position: number): Promise<number>;
}

async function readSlice(raw: RawSource, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(Math.min(SLICE, raw.size - position));
  const n = await raw.readv([buf], position);
  return buf.subarray(0, n);
}

/**
 * A netascii view of a file. Its size (what `tsize` reports) is counted first, by one pass that
 * reads and scans a slice at a time; reads must then come in order (the transfer's chunks do),
 * since a position in the converted stream has no fixed place in the original.
 */
export class NetasciiSource implements BlockSource {
  readonly size: number;
  readonly #raw: RawSource;
  /** The original's read position, the converted position it matches, and converted bytes held over. */
  #rawPos = 0;
  #outPos = 0;
  #carry: Buffer = Buffer.alloc(0);

  private constructor(raw: RawSource, size: number) {
    this.#raw = raw;
    this.size = size;
  }

  /** Count the converted size, a slice per step. @throws when the file cannot be read */
  static async open(raw: RawSource): Promise<NetasciiSource> {
    let size = 0;
    for (let pos = 0; pos < raw.size;) {
      const slice = await readSlice(raw, pos);
      if (slice.length === 0) throw new Error('file shrank while counting');
      size += slice.length + netasciiGrowth(slice);
      pos += slice.length;
    }
    return new NetasciiSource(raw, size);
  }

  async readv(buffers: Buffer[], position: number): Promise<number> {
    if (position !== this.#outPos)
      throw new Error(`netascii reads must be in order (at ${this.#outPos}, asked ${position})`);
    let written = 0;
    for (const target of buffers) {
      let filled = 0;
      while (filled < target.length) {
        if (this.#carry.length === 0) {
          if (this.#rawPos >= this.#raw.size) return written + filled;
          const slice = await readSlice(this.#raw, this.#rawPos);
          if (slice.length === 0) return written + filled;
          this.#rawPos += slice.length;
          this.#carry = toNetascii(slice);
        }
        const n = this.#carry.copy(target, filled);
        this.#carry = this.#carry.subarray(n);
        filled += n;
      }
      written += filled;
      this.#outPos += filled;
    }
    return written;
  }
}
