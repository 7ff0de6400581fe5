import { parentPort, workerData } from 'node:worker_threads';
import type { ChaosOptions } from '#test/chaos/options.ts';
import { stormEvidence } from '#test/chaos/scenarios.ts';

/**
 * The 429 storm's worker thread (see `runStorm` in test/chaos/scenarios.ts): runs the storm's pipeline on an event
 * loop of its own and posts its evidence back. Loaded by Node itself (its own TypeScript type stripping), not by
 * vitest.
 */
parentPort?.postMessage(await stormEvidence(workerData as ChaosOptions));
