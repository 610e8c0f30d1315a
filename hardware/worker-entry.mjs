// Bootstrap of a storage-system worker thread: TypeScript runs in worker threads under Node 20 through
// tsx's loader, registered here (this also works under vitest, whose workers don't inherit a TS loader).
import { register } from 'tsx/esm/api';

register();
await import('./thread-worker.ts');
