// Bootstrap of a benchmark worker thread: registers tsx's loader (workers don't inherit one under Node 20),
// then runs the TypeScript module whose file URL the parent passed as workerData.entry.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
