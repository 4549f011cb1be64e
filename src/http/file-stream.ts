import { Readable } from 'node:stream';
import type { OpenFile } from '../files/root.js';

/**
 * Bytes `start`..`end` (inclusive) of an open file as a stream, read with `OpenFile.readv` in chunks
 * of `chunkSize`. Node's file streams read 64 KiB at a time; every read is a round trip through
 * libuv's thread pool and a buffer for the collector, which was most of the server's CPU per MB
 * served. Bigger chunks cut both; backpressure is the stream's own (`_read` is called only while
 * the socket takes data), so a slow client holds at most one or two chunks. Does not close the file.
 */
export class FileRangeStream extends Readable {
  readonly #file: OpenFile;
  readonly #end: number;
  readonly #chunk: number;
  #position: number;

  constructor(file: OpenFile, start: number, end: number, chunkSize: number) {
    super({ highWaterMark: chunkSize });
    this.#file = file;
    this.#position = start;
    this.#end = end;
    this.#chunk = chunkSize;
  }

  override _read(): void {
    const want = Math.min(this.#chunk, this.#end + 1 - this.#position);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafe(want);
    this.#file.readv([buffer], this.#position).then(
      (got) => {
        if (got === 0) {
          // The file shrank under us: the promised Content-Length cannot be kept.
          this.destroy(new Error(`${this.#file.name} ended early at byte ${this.#position}`));
          return;
        }
        this.#position += got;
        this.push(got < want ? buffer.subarray(0, got) : buffer);
      },
      (err: Error) => this.destroy(err),
    );
  }
}
