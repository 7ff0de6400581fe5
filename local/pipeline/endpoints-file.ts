import { rm, writeFile } from 'node:fs/promises';

/**
 * The local endpoints file: where the pieces of a local pipeline listen. `npm start -- --keep-running` writes it
 * (local/pipeline/) and removes it when it stops; `npm run relay -- --local` reads it. One type for the writer and
 * the reader, in local/ because cli/ may import from local/ and never the reverse.
 */
export interface LocalEndpoints {
  /** The process of `npm start` that wrote the file: a reader can tell a running pipeline from a stale file. */
  readonly pid: number;
  readonly region: string;
  readonly sqsEndpoint: string;
  readonly sendQueueUrl: string;
  readonly sendQueueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly deadLetterQueueArn: string;
  readonly secretsManagerEndpoint: string;
  readonly secretId: string;
  /** The built-in simulator, or the `--ecourtdate-url` of the run. */
  readonly ecourtdateUrl: string;
  /** The job ledger, for `npm run relay -- job ID --local`. */
  readonly dynamodbEndpoint: string;
  readonly ledgerTableName: string;
  /**
   * The local webhook receiver (docs/webhooks.md): POST signed payloads here. Its shared secret is in the local
   * Secrets Manager under `webhookSecretId`. Absent in files written before webhooks.
   */
  readonly webhookUrl?: string;
  readonly webhookSecretId?: string;
}

/** The state directory of `npm start` (its `--state-dir` default): the sender log and the endpoints file. */
export const DEFAULT_STATE_DIR = '.relay-local';
/** The endpoints file's name inside the state directory. */
export const ENDPOINTS_FILE = 'endpoints.json';
/** Where `--local` looks unless `--local-file` says otherwise (relative to the working directory). */
export const DEFAULT_LOCAL_FILE = `${DEFAULT_STATE_DIR}/${ENDPOINTS_FILE}`;
/** The region of the local pipeline's emulators (they accept any). */
export const LOCAL_REGION = 'us-east-1';
/** Credentials for the local emulators, which check none; explicit so that no AWS profile is ever sent to them. */
export const EMULATOR_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
/** The command that starts a local pipeline the `--local` commands can use. */
export const START_LOCAL_PIPELINE = 'npm start -- --keep-running';

/** Writes the endpoints file (JSON, one field a line), replacing any earlier one. */
export async function writeLocalEndpoints(path: string, endpoints: LocalEndpoints): Promise<void> {
  await writeFile(path, `${JSON.stringify(endpoints, null, 2)}\n`);
}

/** Removes the endpoints file when the pipeline stops; a file already gone is fine. */
export async function removeLocalEndpoints(path: string): Promise<void> {
  await rm(path, { force: true });
}
