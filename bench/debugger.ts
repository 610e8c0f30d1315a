// Speed of the stepping debugger (sim runtime): events per second of step(), of continue(), the time of
// `back` across 10,000 events, and of digest, save and load. One run, this machine; printed, never asserted.
//   npm run bench:debugger [-- --json]

import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimDebugger } from '../harness/debugger.ts';

const json = process.argv.includes('--json');
const recipe = { scenario: 'embodiment1-cycle', seed: 1, scale: 1, faults: 'none' };
const dir = mkdtempSync(join(tmpdir(), 'rclab-bench-debug-'));
const time = async <T>(f: () => Promise<T> | T): Promise<[T, number]> => { const t = performance.now(); const r = await f(); return [r, performance.now() - t]; };

const d = await SimDebugger.start(recipe);
const STEPS = 5_000;
const [, stepMs] = await time(async () => { for (let i = 0; i < STEPS; i++) await d.step(); });
const [, continueMs] = await time(() => d.step(15_000)); // one call, the gate deciding per event
const at = d.eventIndex;
const [digest, digestMs] = await time(() => d.digest());
const [back, backMs] = await time(() => d.back(10_000));
const [forward, replayToMs] = await time(() => d.goto(at));
const file = join(dir, 'bench.snap');
const [, saveMs] = await time(() => d.save(file));
await d.close();
const [loaded, loadMs] = await time(() => SimDebugger.load(file));
const total = (await loaded.finish()).firmwareEvents;

const figures = {
  scenario: `${recipe.scenario} seed ${recipe.seed} scale ${recipe.scale} (${total} events in the whole run)`,
  stepEventsPerSecond: Math.round(STEPS / (stepMs / 1000)),
  runEventsPerSecond: Math.round(15_000 / (continueMs / 1000)),
  digestMs: Math.round(digestMs),
  backAcross10000EventsMs: Math.round(backMs),
  backFromEvent: at, backToEvent: back.eventIndex, sameWorldAgain: forward.verified && forward.digest === digest,
  forwardAgainMs: Math.round(replayToMs),
  saveMs: Math.round(saveMs), snapshotKiB: Math.round(statSync(file).size / 1024),
  loadMs: Math.round(loadMs), loadedAtEvent: at,
};
if (json) console.log(JSON.stringify(figures, null, 2));
else {
  console.log(`debugger speed, ${figures.scenario}`);
  console.log(`  step():                    ${figures.stepEventsPerSecond.toLocaleString('en')} events/s (one event per call, ${STEPS} calls)`);
  console.log(`  step(15000):               ${figures.runEventsPerSecond.toLocaleString('en')} events/s (the gate checking after each event)`);
  console.log(`  digest of the whole world: ${figures.digestMs} ms`);
  console.log(`  back 10,000 events:        ${figures.backAcross10000EventsMs} ms (event #${at} → #${back.eventIndex}, by replay from the seed)`);
  console.log(`  goto forward again:        ${figures.forwardAgainMs} ms (world digest identical to the first visit: ${figures.sameWorldAgain})`);
  console.log(`  save:                      ${figures.saveMs} ms, ${figures.snapshotKiB} KiB`);
  console.log(`  load:                      ${figures.loadMs} ms (replay to event #${at} and byte-for-byte check)`);
}
