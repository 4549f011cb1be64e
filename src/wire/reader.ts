/** Why a datagram could not be decoded; the same string names the drop counter. */
export type DecodeErrorCode =
  'truncated' | 'too-long' | 'bad-magic' | 'bad-hlen' | 'bad-op' | 'bad-opcode' | 'bad-option' | 'bad-string';

/** The only error a decoder throws: the input is not a well-formed packet. */
export class DecodeError extends Error {
  constructor(
    readonly code: DecodeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DecodeError';
  }
}

/**
 * An encoder was handed something it cannot encode: our own bug, never the network's. Kept apart
 * from DecodeError so that it is logged as an internal error, not counted as a malformed packet.
 */
export class EncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncodeError';
  }
}

/** A bounds-checked cursor over a Buffer: all offset arithmetic of the decoders goes through it. */
export class Reader {
  #pos = 0;
  constructor(private readonly buf: Buffer) {}

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.buf.length - this.#pos;
  }

  u8(): number {
    if (this.remaining < 1) throw truncated(1, this.#pos);
    return this.buf[this.#pos++]!;
  }

  u16(): number {
    if (this.remaining < 2) throw truncated(2, this.#pos);
    const v = this.buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }

  u32(): number {
    if (this.remaining < 4) throw truncated(4, this.#pos);
    const v = this.buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** A view (not a copy) of the next n bytes. */
  take(n: number): Buffer {
    if (n > this.remaining) throw truncated(n, this.#pos);
    const start = this.#pos;
    this.#pos += n;
    return this.buf.subarray(start, this.#pos);
  }

  /** Everything not read yet. */
  rest(): Buffer {
    return this.take(this.remaining);
  }
}

function truncated(n: number, at: number): DecodeError {
  return new DecodeError('truncated', `need ${n} bytes at offset ${at}`);
}
