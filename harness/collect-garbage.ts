// A full garbage collection on demand, without `node --expose-gc` (V8's flag set at run time, its `gc` taken from a
// fresh context). Used at quiet points only: see ThreadsWorld.create.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
