import { join, resolve } from 'node:path';

/** The project's root directory. */
export const ROOT = resolve(import.meta.dirname, '../..');

/**
 * What a chaos run is asked to do, from the environment: `npm run chaos -- --jobs N --seed N` (test/chaos/run.ts)
 * passes its options this way, and CI runs the defaults.
 */
export interface ChaosOptions {
  /** `CHAOS_SEED`: the plan of faults. */
  readonly seed: number;
  /** `CHAOS_JOBS`: jobs of the mixed-faults run. */
  readonly jobs: number;
  /**
   * `CHAOS_TIME_SCALE`: of the mixed-faults run. 120 keeps a crash recoverable inside the scaled duplicate
   * window (the queue's visibility timeout, scaled, still ends well inside it) and the retry chain after an
   * unknown outcome inside it too, while a 60 s backoff takes half a second.
   */
  readonly timeScale: number;
  /** `CHAOS_INSTANCES`: simulated sender instances of the mixed-faults run. */
  readonly instances: number;
  /**
   * `CHAOS_WAVE`: jobs per pipeline run of the mixed-faults scenario; more jobs run in waves, one after the
   * other. One machine sends some 10 jobs a second; a larger burst would wait in the queue for what the time
   * scale makes hours, far past the 30-minute duplicate window that a deployed relay, sending 900 a minute,
   * never leaves.
   */
  readonly wave: number;
  /**
   * `CHAOS_PARALLEL`: waves that run at once, each a pipeline of its own (its own instances, queues, ledger and
   * outages). Each wave's backlog after an outage is then what its own instances drain, and one machine's cores,
   * which a chaos run mostly leaves idle while the scaled clock runs, serve two waves at once.
   */
  readonly parallel: number;
  /** `CHAOS_STORM_HOURS`: how long the 429 storm lasts, in the API's hours. */
  readonly stormHours: number;
  /** `CHAOS_REPORT_DIR`: where the figures go. */
  readonly reportDir: string;
}

export const CHAOS_DEFAULTS = {
  seed: 20261125,
  jobs: 500,
  timeScale: 120,
  instances: 4,
  wave: 125,
  parallel: 4,
  stormHours: 4,
} as const;

export const CHAOS_ENV = {
  seed: 'CHAOS_SEED',
  jobs: 'CHAOS_JOBS',
  timeScale: 'CHAOS_TIME_SCALE',
  instances: 'CHAOS_INSTANCES',
  wave: 'CHAOS_WAVE',
  parallel: 'CHAOS_PARALLEL',
  stormHours: 'CHAOS_STORM_HOURS',
  reportDir: 'CHAOS_REPORT_DIR',
} as const;

/** Reads the options; throws a RangeError naming the variable when one is not a number in its range. */
export function chaosOptions(env: Readonly<Record<string, string | undefined>> = process.env): ChaosOptions {
  const number = (name: keyof typeof CHAOS_DEFAULTS, min: number, max: number, whole = true): number => {
    const raw = env[CHAOS_ENV[name]];
    if (raw === undefined || raw === '') return CHAOS_DEFAULTS[name];
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max || (whole && !Number.isInteger(value))) {
      throw new RangeError(
        `${CHAOS_ENV[name]}: expected ${whole ? 'a whole number' : 'a number'} from ${min} to ${max}, got "${raw}"`,
      );
    }
    return value;
  };
  return {
    seed: number('seed', 0, 2 ** 32 - 1),
    jobs: number('jobs', 1, 100_000),
    timeScale: number('timeScale', 1, 600),
    instances: number('instances', 1, 50),
    wave: number('wave', 1, 100_000),
    parallel: number('parallel', 1, 8),
    stormHours: number('stormHours', 0.1, 48, false),
    reportDir: env[CHAOS_ENV.reportDir] || join(ROOT, 'reports'),
  };
}

/**
 * Real seconds one wave of the mixed-faults run may take before the jobs not settled count as lost: a default
 * wave settles in well under a minute, so three minutes means something is stuck; a larger one gets 0.2 s a job.
 */
export function runTimeoutSeconds(options: Pick<ChaosOptions, 'jobs' | 'wave'>): number {
  return Math.max(180, Math.ceil(Math.min(options.jobs, options.wave) / 5));
}

/** Waves of the mixed-faults run. */
export function waves(options: Pick<ChaosOptions, 'jobs' | 'wave'>): number {
  return Math.ceil(options.jobs / options.wave);
}
