/**
 * A problem the user can fix (bad flag, missing interface, port in use): printed as one line on
 * stderr, exit status 1, never a stack trace. `usage` adds the usage text, as pxe-pdhcp did.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly usage = false,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
