import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  SendMessageCommand as QuerySendMessageCommand,
  SQSClient as QuerySQSClient,
} from 'sqs-query-protocol-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EMULATOR_CREDENTIALS, ENDPOINTS_FILE } from '#local/pipeline/endpoints-file.ts';
import { parseStartOptions } from '#local/pipeline/options.ts';
import { type PipelineRun, runPipeline } from '#local/pipeline/run.ts';
import { relay } from '#test/cli/run.ts';
import { collector, jobLine, REPO_ROOT, tempDir } from '#test/local/io.ts';
import { eventually } from '#test/local/wait.ts';

// The AWS CLI producer example of docs/deploy.md ("Send a job"), sent to the local pipeline (npm start --
// --keep-running) in both of SQS's wire protocols: in the query protocol by a client from before SQS's JSON
// protocol (standing in for the Debian AWS CLI 2.9.19 and older SDKs), in JSON by the current SDK (a current
// AWS CLI), each to a pipeline of its own. The job is then delivered by the local pipeline's sender.

/** The `--message-body` of the docs' `aws sqs send-message --queue-url <SendQueueUrl>` example. */
function exampleMessageBody(): string {
  const deploy = readFileSync(join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8');
  const example =
    /aws sqs send-message --queue-url <SendQueueUrl> --message-group-id default --message-body '([^']*)'/.exec(
      deploy,
    );
  if (!example?.[1]) throw new Error('docs/deploy.md has no "aws sqs send-message" example any more');
  return example[1];
}

describe('the AWS CLI producer example of docs/deploy.md, against the local pipeline', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let pipeline: PipelineRun;
  let endpointsFile: string;

  beforeEach(async () => {
    dir = await tempDir();
    const jobs = await dir.file('jobs.jsonl', jobLine('warm-up', '+15551230301'));
    const options = parseStartOptions(['--jobs', jobs, '--keep-running', '--state-dir', dir.path]);
    pipeline = await runPipeline(options, { stdout: collector(), env: {}, cwd: REPO_ROOT });
    endpointsFile = join(dir.path, ENDPOINTS_FILE);
  });

  afterEach(async () => {
    await pipeline?.stop();
    await dir?.remove();
  });

  /** The job's ledger entry, as `npm run relay -- job ID --local --json` prints it, once it is delivered. */
  async function delivered(id: string): Promise<void> {
    await eventually(async () => {
      const run = await relay('job', id, '--local', '--local-file', endpointsFile, '--json');
      expect(JSON.parse(run.stdout)).toMatchObject({ job_id: id, status: 'delivered', last_status: 201 });
    }, 30_000);
  }

  it('sent in the query protocol (the Debian AWS CLI 2.9.19, older SDKs), the job is delivered', async () => {
    const { sqsEndpoint, sendQueueUrl, region } = pipeline.endpoints;
    const body = exampleMessageBody();
    const client = new QuerySQSClient({ endpoint: sqsEndpoint, region, credentials: EMULATOR_CREDENTIALS });

    const sent = await client.send(
      new QuerySendMessageCommand({ QueueUrl: sendQueueUrl, MessageBody: body, MessageGroupId: 'default' }),
    );
    client.destroy();

    expect(sent.MessageId).toEqual(expect.any(String));
    await delivered(JSON.parse(body).id);
  });

  it('sent in the JSON protocol (a current AWS CLI or SDK), the job is delivered', async () => {
    const { sqsEndpoint, sendQueueUrl, region } = pipeline.endpoints;
    const body = exampleMessageBody();
    const client = new SQSClient({
      endpoint: sqsEndpoint,
      region,
      credentials: EMULATOR_CREDENTIALS,
      useQueueUrlAsEndpoint: false,
    });

    const sent = await client.send(
      new SendMessageCommand({ QueueUrl: sendQueueUrl, MessageBody: body, MessageGroupId: 'default' }),
    );
    client.destroy();

    expect(sent.MessageId).toEqual(expect.any(String));
    await delivered(JSON.parse(body).id);
  });
});
