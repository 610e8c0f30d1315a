// piscina worker bootstrap: TypeScript through tsx, then the sweep task.
import { register } from 'tsx/esm/api';
register();
const task = await import('./sweep-task.ts');
export default task.default;
