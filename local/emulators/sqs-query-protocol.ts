import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { XMLBuilder } from 'fast-xml-parser';

/**
 * SQS's query protocol, the one older SDKs and the AWS CLI before SQS's JSON protocol speak (a form-encoded
 * `Action=SendMessage&Version=2012-11-05&...` request, an XML answer), translated to and from the AWS JSON 1.0
 * protocol that fauxqs and the strict SQS layer speak (docs/sqs-limits.md, "The strict SQS layer"). The layer
 * turns a query request into the JSON request of the same action, runs it through the same rules and the same
 * IAM check, and renders the JSON answer as the query protocol's XML: one code path for both protocols.
 */

/** The query protocol's request content type. */
export const QUERY_CONTENT_TYPE = 'application/x-www-form-urlencoded';
/** The XML namespace of SQS's query answers (API version 2012-11-05). */
const SQS_XMLNS = 'http://queue.amazonaws.com/doc/2012-11-05/';

/** One query request as its JSON 1.0 equivalent: the action (`X-Amz-Target: AmazonSQS.<action>`) and body. */
export interface QueryRequest {
  readonly action: string;
  readonly body: Record<string, unknown>;
}

/** An HTTP answer, whole: `body` is JSON 1.0 going in, XML coming out of `toQueryAnswer`. */
export interface WholeAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

/** The query protocol's flattened list members and their JSON list names. */
const LISTS: Readonly<Record<string, string>> = {
  AttributeName: 'AttributeNames',
  MessageAttributeName: 'MessageAttributeNames',
  MessageSystemAttributeName: 'MessageSystemAttributeNames',
  TagKey: 'TagKeys',
  AWSAccountId: 'AWSAccountIds',
  ActionName: 'Actions',
  StringListValue: 'StringListValues',
  BinaryListValue: 'BinaryListValues',
  SendMessageBatchRequestEntry: 'Entries',
  DeleteMessageBatchRequestEntry: 'Entries',
  ChangeMessageVisibilityBatchRequestEntry: 'Entries',
};

/** The query protocol's flattened maps (entries of a key and a value member) and their JSON map names. */
const MAPS: Readonly<Record<string, { readonly json: string; readonly key: string }>> = {
  Attribute: { json: 'Attributes', key: 'Name' },
  MessageAttribute: { json: 'MessageAttributes', key: 'Name' },
  MessageSystemAttribute: { json: 'MessageSystemAttributes', key: 'Name' },
  Tag: { json: 'Tags', key: 'Key' },
};

/** The integer parameters of SQS's actions, which JSON 1.0 sends as numbers and the query protocol as text. */
const INTEGERS = new Set([
  'DelaySeconds',
  'VisibilityTimeout',
  'MaxNumberOfMessages',
  'WaitTimeSeconds',
  'MaxResults',
  'MaxNumberOfMessagesPerSecond',
]);

/** Form parameters that are the protocol's, not the action's (the version, and query-string signing). */
const PROTOCOL_PARAMETERS =
  /^(Action|Version|AWSAccessKeyId|Signature|SignatureMethod|SignatureVersion|Timestamp|Expires|SecurityToken|X-Amz-.*)$/;

/**
 * The JSON 1.0 request of a query-protocol request, or `undefined` when the request is not one (its content
 * type is not `application/x-www-form-urlencoded`, or it names no `Action`). Lists (`AttributeName.1`,
 * `SendMessageBatchRequestEntry.2.Id`) become JSON lists under their JSON names (`AttributeNames`, `Entries`),
 * maps (`MessageAttribute.1.Name` with `MessageAttribute.1.Value.DataType`, `Attribute.1.Name` with
 * `.Value`, `Tag.1.Key` with `.Value`) JSON objects, and integer parameters (`DelaySeconds`,
 * `VisibilityTimeout`, ...) numbers when they are written as integers (else they stay text, for the rules to
 * refuse). Throws nothing: a malformed form yields whatever parameters it holds.
 */
export function parseQueryRequest(headers: IncomingHttpHeaders, raw: Buffer): QueryRequest | undefined {
  const contentType = headers['content-type'] ?? '';
  if (!contentType.toLowerCase().startsWith(QUERY_CONTENT_TYPE)) return undefined;
  const form = new URLSearchParams(raw.toString('utf8'));
  const action = form.get('Action');
  if (!action) return undefined;
  const tree: Tree = Object.create(null);
  for (const [key, value] of form) {
    if (PROTOCOL_PARAMETERS.test(key)) continue;
    place(tree, key.split('.'), value);
  }
  return { action, body: toJsonShape(tree) as Record<string, unknown> };
}

/**
 * Form parameters as a tree of their dotted paths: `A.1.B=x` is `{ A: { 1: { B: 'x' } } }`. Every node, and every
 * object made from one, has no prototype, so a parameter named `__proto__` or `constructor` is the request's own.
 */
interface Tree {
  [segment: string]: Tree | string;
}

function place(tree: Tree, path: readonly string[], value: string): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    tree[head] = value;
    return;
  }
  const next = tree[head];
  const child: Tree = typeof next === 'object' ? next : Object.create(null);
  tree[head] = child;
  place(child, rest, value);
}

/** The members of a flattened list, by their 1-based index, in order; a lone value is a list of one. */
function members(node: Tree | string): (Tree | string)[] {
  if (typeof node === 'string') return [node];
  return Object.keys(node)
    .filter((index) => /^\d+$/.test(index))
    .sort((a, b) => Number(a) - Number(b))
    .map((index) => node[index] as Tree | string);
}

function toJsonShape(node: Tree | string): unknown {
  if (typeof node === 'string') return node;
  const out: Record<string, unknown> = Object.create(null);
  for (const [name, value] of Object.entries(node)) {
    const list = Object.hasOwn(LISTS, name) ? LISTS[name] : undefined;
    const map = Object.hasOwn(MAPS, name) ? MAPS[name] : undefined;
    if (list !== undefined) out[list] = members(value).map(toJsonShape);
    else if (map !== undefined) {
      const entries: Record<string, unknown> = Object.create(null);
      for (const entry of members(value)) {
        if (typeof entry !== 'object') continue;
        const key = entry[map.key];
        if (typeof key === 'string' && entry.Value !== undefined) entries[key] = toJsonShape(entry.Value);
      }
      out[map.json] = entries;
    } else if (INTEGERS.has(name) && typeof value === 'string' && /^-?\d+$/.test(value)) {
      out[name] = Number(value);
    } else out[name] = toJsonShape(value);
  }
  return out;
}

/** JSON answer members the query protocol names otherwise: flattened lists of one element name each. */
const ANSWER_LISTS: Readonly<Record<string, string>> = {
  Messages: 'Message',
  QueueUrls: 'QueueUrl',
  queueUrls: 'QueueUrl',
  Failed: 'BatchResultErrorEntry',
  Results: 'ListMessageMoveTasksResultEntry',
  StringListValues: 'StringListValue',
  BinaryListValues: 'BinaryListValue',
};

/** JSON answer maps the query protocol writes as flattened entries of a key and a value. */
const ANSWER_MAPS: Readonly<Record<string, { readonly element: string; readonly key: string }>> = {
  Attributes: { element: 'Attribute', key: 'Name' },
  MessageAttributes: { element: 'MessageAttribute', key: 'Name' },
  Tags: { element: 'Tag', key: 'Key' },
};

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  suppressEmptyNode: true,
});

/**
 * The query protocol's answer to `action` for the JSON 1.0 answer `answer`, with the same status. A success is
 * `<{action}Response><{action}Result>...</{action}Result><ResponseMetadata><RequestId>` (the batch actions'
 * `Successful` entries as `{action}ResultEntry`, `Failed` as `BatchResultErrorEntry`, ReceiveMessage's messages
 * as `Message` with `Attribute` and `MessageAttribute` entries, as the SQS API Reference shows them); a refusal
 * is `<ErrorResponse><Error><Type>Sender</Type><Code>...</Code><Message>...</Message></Error>`, its code the
 * query-protocol code of `x-amzn-query-error` (e.g. `AWS.SimpleQueueService.TooManyEntriesInBatchRequest`,
 * `AccessDenied`) or else the JSON `__type`'s. Values are XML-escaped by fast-xml-parser; a carriage return is
 * written `&#xD;`, because an XML parser turns a raw one into a line feed and the body's MD5 would no longer
 * match. Throws nothing: an answer that is not JSON is returned unchanged.
 */
export function toQueryAnswer(action: string, answer: WholeAnswer): WholeAnswer {
  const json = parseObject(answer.body);
  if (json === undefined) return answer;
  const requestId = headerOf(answer.headers, 'x-amzn-requestid') ?? randomUUID();
  const document =
    answer.status === 200
      ? successDocument(action, json, requestId)
      : errorDocument(answer.status, headerOf(answer.headers, 'x-amzn-query-error'), json, requestId);
  const xml = (builder.build(document) as string).replaceAll('\r', '&#xD;');
  return {
    status: answer.status,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body: Buffer.from(xml, 'utf8'),
  };
}

function successDocument(action: string, json: Record<string, unknown>, requestId: string): unknown {
  const result = toXmlShape(json, `${action}ResultEntry`);
  const hasResult = Object.keys(json).length > 0;
  return {
    [`${action}Response`]: {
      '@_xmlns': SQS_XMLNS,
      ...(hasResult ? { [`${action}Result`]: result } : {}),
      ResponseMetadata: { RequestId: requestId },
    },
  };
}

function errorDocument(
  status: number,
  queryError: string | undefined,
  json: Record<string, unknown>,
  requestId: string,
): unknown {
  const [queryCode, queryType] = queryError?.split(';') ?? [];
  const jsonType = typeof json.__type === 'string' ? json.__type.split('#').pop() : undefined;
  const message = json.message ?? json.Message;
  return {
    ErrorResponse: {
      '@_xmlns': SQS_XMLNS,
      Error: {
        Type: queryType || (status >= 500 ? 'Receiver' : 'Sender'),
        Code: queryCode || jsonType || 'InternalError',
        ...(typeof message === 'string' ? { Message: message } : {}),
      },
      RequestId: requestId,
    },
  };
}

/** A JSON answer's value in the query protocol's XML shape; `successfulEntry` names a batch's `Successful`. */
function toXmlShape(value: unknown, successfulEntry: string): unknown {
  if (Array.isArray(value)) return value.map((item) => toXmlShape(item, successfulEntry));
  if (typeof value !== 'object' || value === null) return typeof value === 'string' ? value : String(value);
  const out: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(value)) {
    if (member === undefined || member === null) continue;
    const map = ANSWER_MAPS[name];
    if (map !== undefined && typeof member === 'object' && !Array.isArray(member)) {
      out[map.element] = Object.entries(member).map(([key, entry]) => ({
        [map.key]: key,
        Value: toXmlShape(entry, successfulEntry),
      }));
    } else {
      const element = name === 'Successful' ? successfulEntry : (ANSWER_LISTS[name] ?? name);
      out[element] = toXmlShape(member, successfulEntry);
    }
  }
  return out;
}

function parseObject(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8') || '{}');
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function headerOf(headers: Record<string, string | string[]>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
