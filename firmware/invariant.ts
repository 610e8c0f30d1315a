// A broken invariant stops the controller loudly; it never corrupts quietly.

export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function assertInvariant(cond: boolean, message: string): asserts cond {
  if (!cond) throw new InvariantError(`firmware invariant violated: ${message}`);
}
