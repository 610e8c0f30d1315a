// A promise given a wall-clock limit: what never settles fails by name instead of leaving its caller idle for ever.

/** `p`, or an error with the message `what()` when it has not settled after `ms` of wall time. */
export async function withinWallMs<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(what())), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
