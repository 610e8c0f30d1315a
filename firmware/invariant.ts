// A broken invariant stops the controller loudly; it never corrupts quietly.

export class InvariantError extends Error {
  override name = 'InvariantError';
}

/** `message` may be a function, so that a check on the per-write path does not build its text every time. */
export function assertInvariant(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new InvariantError(`firmware invariant violated: ${typeof message === 'function' ? message() : message}`);
}
