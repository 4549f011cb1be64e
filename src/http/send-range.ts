import type { ServerResponse } from 'node:http';
import type { OpenFile } from '../files/root.js';

/**
 * Send bytes `start`..`end` (inclusive) of an open file as the body of `res`, then end it. Two
 * buffers of `chunkSize` per response, used in turn: the next chunk is read from the file while
 * the previous one is being written, and a buffer is read into again only once its write has
 * completed (the write callback), so nothing is allocated per chunk and a connection never holds
 * more than the two. Backpressure is the write callback itself: a client that stops reading stops
 * the reads. `onSent` counts the bytes handed to the socket. Rejects when the file ends early or
 * the response is cut off. Does not close the file.
 */
export async function sendRange(
  file: OpenFile,
  res: ServerResponse,
  start: number,
  end: number,
  chunkSize: number,
  onSent: (bytes: number) => void = () => undefined,
): Promise<void> {
  const size = Math.min(chunkSize, end + 1 - start);
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  let writing: Promise<void> | undefined;
  let position = start;
  for (let turn = 0; position <= end; turn ^= 1) {
    const want = Math.min(size, end + 1 - position);
    const buffer = buffers[turn]!.subarray(0, want);
    const got = await file.readv([buffer], position);
    if (got === 0) throw new Error(`${file.name} ended early at byte ${position}`);
    // The other buffer's write must be done before its turn comes round again (next iteration).
    await writing;
    if (res.destroyed) throw new Error('response closed');
    const chunk = got < want ? buffer.subarray(0, got) : buffer;
    writing = new Promise<void>((resolve, reject) => res.write(chunk, (err) => (err ? reject(err) : resolve())));
    // A write after the response was destroyed fails through its callback; keep it from being unhandled.
    writing.catch(() => undefined);
    position += got;
    onSent(got);
  }
  await writing;
  res.end();
}
