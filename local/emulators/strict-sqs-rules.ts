/**
 * What real SQS refuses, as pure checks over the AWS JSON 1.0 request shapes (`SendMessage`, `SendMessageBatch`,
 * `ChangeMessageVisibility(Batch)`, `DeleteMessageBatch`). The strict SQS layer (local/emulators/strict-sqs.ts) applies
 * them in front of fauxqs, which accepts much of this.
 *
 * This table is deliberately independent of the relay's own constants (shared/config.ts, shared/sqs/settle.ts):
 * it is the test world's oracle, so a wrong constant in the relay fails a test instead of agreeing with itself.
 *
 * Sources: the Amazon SQS API Reference (SendMessage, SendMessageBatch, ChangeMessageVisibility,
 * DeleteMessageBatch, MessageAttributeValue) and the Developer Guide's "Amazon SQS message attributes" and
 * "Amazon SQS visibility timeout" pages.
 */
export const SQS_LIMITS = {
  /** ChangeMessageVisibility / ReceiveMessage `VisibilityTimeout`: 0 to 43,200 s (12 h). */
  maxVisibilityTimeoutSeconds: 43_200,
  /**
   * The 12 h also bound the total visibility of one receive, counted from the ReceiveMessage: "If you try to
   * extend the visibility timeout beyond 12 hours, your request is rejected" (ChangeMessageVisibility).
   */
  maxTotalVisibilitySeconds: 43_200,
  /** SendMessage(Batch) `DelaySeconds`: 0 to 900 s (15 min). */
  maxDelaySeconds: 900,
  /** SendMessage: body plus every attribute's name, type and value, 1 MiB (raised from 256 KiB in 2025). */
  maxMessageBytes: 1_048_576,
  /** SendMessageBatch: the sum over all entries, same 1 MiB (`BatchRequestTooLong`). */
  maxBatchBytes: 1_048_576,
  /** Entries of one batch request (`TooManyEntriesInBatchRequest`; none is `EmptyBatchRequest`). */
  maxBatchEntries: 10,
  /** A batch entry `Id`: alphanumerics, hyphens and underscores, up to 80 characters (`InvalidBatchEntryId`). */
  batchEntryId: /^[A-Za-z0-9_-]{1,80}$/,
  /** Message attributes per message ("Each message can have up to 10 attributes"). */
  maxMessageAttributes: 10,
  /** Attribute name: `A-Z a-z 0-9 _ - .`, up to 256 characters. */
  attributeName: /^[A-Za-z0-9_.-]{1,256}$/,
  /** Attribute names reserved for AWS, in any casing. */
  reservedAttributePrefix: /^(aws|amazon)\./i,
  /** Attribute data type: String, Number or Binary, optionally `.custom-label`; up to 256 characters. */
  dataType: /^(String|Number|Binary)(\..+)?$/s,
  maxDataTypeLength: 256,
  /** Number attributes: up to 38 digits of precision, between -10^128 and 10^126. */
  maxNumberDigits: 38,
  maxNumberMagnitude: 1e126,
  minNumberMagnitude: 1e-128,
  /**
   * `MessageGroupId` (SendMessage, SendMessageBatch): 1 to 128 characters, alphanumeric and punctuation
   * (`!"#$%&'()*+,-./:;<=>?@[\]^_\`{|}~`). Optional on a standard queue, where it makes a fair queue (SQS
   * Developer Guide, "Amazon SQS fair queues").
   */
  messageGroupId: /^[A-Za-z0-9!-/:-@[-`{-~]{1,128}$/,
} as const;

/**
 * The characters SQS allows in a message body and in String attribute values (SendMessage, after the W3C XML
 * character set): #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. Written as code-point
 * ranges, not as a regular expression, so that it shares nothing with the relay's sanitiser.
 */
const ALLOWED_CODE_POINTS: readonly (readonly [number, number])[] = [
  [0x9, 0x9],
  [0xa, 0xa],
  [0xd, 0xd],
  [0x20, 0xd7ff],
  [0xe000, 0xfffd],
  [0x10000, 0x10ffff],
];

/** What SQS answers when it refuses: its error code (the `__type` after `#`) and message. */
export interface Violation {
  readonly code: string;
  readonly message: string;
}

/** One attribute as the AWS JSON protocol carries it; `BinaryValue` is base64. */
export interface WireAttribute {
  readonly DataType?: unknown;
  readonly StringValue?: unknown;
  readonly BinaryValue?: unknown;
}

/** A SendMessage request, or one SendMessageBatch entry (plus its `Id`). */
export interface WireMessage {
  readonly Id?: unknown;
  readonly MessageBody?: unknown;
  readonly DelaySeconds?: unknown;
  readonly MessageAttributes?: unknown;
  readonly MessageGroupId?: unknown;
}

/** The first character outside SQS's allowed set, as `#xHH`, or undefined when every character is allowed. */
export function firstDisallowedCharacter(text: string): string | undefined {
  for (const char of text) {
    const point = char.codePointAt(0) ?? 0;
    if (!ALLOWED_CODE_POINTS.some(([low, high]) => point >= low && point <= high)) {
      return `#x${point.toString(16).toUpperCase()}`;
    }
  }
  return undefined;
}

/**
 * Checks a `VisibilityTimeout` value (ChangeMessageVisibility, its batch entries): an integer of 0 to 43,200 s.
 */
export function checkVisibilityTimeout(value: unknown): Violation | undefined {
  if (isIntegerIn(value, 0, SQS_LIMITS.maxVisibilityTimeoutSeconds)) return undefined;
  return invalidValue(
    'VisibilityTimeout',
    value,
    `Must be between 0 and ${SQS_LIMITS.maxVisibilityTimeoutSeconds}.`,
  );
}

/**
 * Checks a visibility change against the 12 h counted from the ReceiveMessage that produced the receipt handle:
 * the new timeout runs from the call, so `elapsedSeconds + requested` must stay within 43,200 s. The message is
 * the one SQS sends.
 */
export function checkTotalVisibility(elapsedSeconds: number, requested: number): Violation | undefined {
  if (elapsedSeconds + requested <= SQS_LIMITS.maxTotalVisibilitySeconds) return undefined;
  return invalidValue(
    'VisibilityTimeout',
    requested,
    `Total VisibilityTimeout for the message is beyond the limit [${SQS_LIMITS.maxTotalVisibilitySeconds} seconds]`,
  );
}

/**
 * A receipt handle from an earlier receive of a message that has been received again since, or deleted. SQS
 * documents `MessageNotInflight` / `ReceiptHandleIsInvalid` for ChangeMessageVisibility, but the service
 * answers such a handle with `InvalidParameterValue` and this reason (as operators report it), which is what
 * the layer returns.
 */
export function staleReceiptHandle(receiptHandle: string): Violation {
  return invalidValue(
    'ReceiptHandle',
    receiptHandle,
    'Message does not exist or is not available for visibility timeout change.',
  );
}

/**
 * Checks what SQS refuses in one message, in the order SQS reports it: body (present, allowed characters),
 * DelaySeconds, attributes (count, names, data types, values), then size. Error messages name the attribute and
 * the offending character code, never a value.
 */
export function checkMessage(message: WireMessage): Violation | undefined {
  const body = message.MessageBody;
  if (typeof body !== 'string' || body.length === 0) {
    return { code: 'MissingParameter', message: 'The request must contain the parameter MessageBody.' };
  }
  const badBodyChar = firstDisallowedCharacter(body);
  if (badBodyChar) {
    return {
      code: 'InvalidMessageContents',
      message: `Invalid binary character '${badBodyChar}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`,
    };
  }
  if (
    message.DelaySeconds !== undefined &&
    !isIntegerIn(message.DelaySeconds, 0, SQS_LIMITS.maxDelaySeconds)
  ) {
    return invalidValue(
      'DelaySeconds',
      message.DelaySeconds,
      `DelaySeconds must be >= 0 and <= ${SQS_LIMITS.maxDelaySeconds}.`,
    );
  }
  const group = checkMessageGroupId(message.MessageGroupId);
  if (group) return group;
  const attributes = attributesOf(message.MessageAttributes);
  if (!attributes) {
    return { code: 'InvalidParameterValue', message: 'MessageAttributes must be a map of attribute values.' };
  }
  if (attributes.length > SQS_LIMITS.maxMessageAttributes) {
    return {
      code: 'InvalidParameterValue',
      message: `Number of message attributes [${attributes.length}] exceeds the allowed maximum [${SQS_LIMITS.maxMessageAttributes}].`,
    };
  }
  let size = Buffer.byteLength(body, 'utf8');
  for (const [name, value] of attributes) {
    const violation = checkAttribute(name, value);
    if (violation) return violation;
    size += attributeBytes(name, value);
  }
  if (size > SQS_LIMITS.maxMessageBytes) {
    return {
      code: 'InvalidParameterValue',
      message: `One or more parameters are invalid. Reason: Message must be shorter than ${SQS_LIMITS.maxMessageBytes} bytes.`,
    };
  }
  return undefined;
}

/**
 * Checks a `MessageGroupId` (absent is fine on a standard queue): a string of 1 to 128 alphanumeric and
 * punctuation characters. The message names the rule, never the value.
 */
export function checkMessageGroupId(value: unknown): Violation | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && SQS_LIMITS.messageGroupId.test(value)) return undefined;
  return {
    code: 'InvalidParameterValue',
    message:
      'Value for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and ' +
      'punctuation characters. 1 to 128 in length.',
  };
}

/** Size of a message as SQS counts it: body bytes plus each attribute's name, data type and value bytes. */
export function messageBytes(message: WireMessage): number {
  const body = typeof message.MessageBody === 'string' ? message.MessageBody : '';
  let size = Buffer.byteLength(body, 'utf8');
  for (const [name, value] of attributesOf(message.MessageAttributes) ?? [])
    size += attributeBytes(name, value);
  return size;
}

/**
 * Checks what SQS refuses for a batch request as a whole (every `*Batch` action): no entries, more than 10,
 * a malformed or repeated entry `Id`. The batch payload size is checked by the caller for SendMessageBatch.
 */
export function checkBatch(entries: unknown): Violation | undefined {
  if (!Array.isArray(entries) || entries.length === 0) {
    return { code: 'EmptyBatchRequest', message: "The batch request doesn't contain any entries." };
  }
  if (entries.length > SQS_LIMITS.maxBatchEntries) {
    return {
      code: 'TooManyEntriesInBatchRequest',
      message: `Maximum number of entries per request are ${SQS_LIMITS.maxBatchEntries}. You have sent ${entries.length}.`,
    };
  }
  const ids = new Set<string>();
  for (const entry of entries as { Id?: unknown }[]) {
    const id = entry?.Id;
    if (typeof id !== 'string' || !SQS_LIMITS.batchEntryId.test(id)) {
      return {
        code: 'InvalidBatchEntryId',
        message:
          'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.',
      };
    }
    if (ids.has(id)) {
      return { code: 'BatchEntryIdsNotDistinct', message: `Id ${id} repeated.` };
    }
    ids.add(id);
  }
  return undefined;
}

/** Checks the summed size of a SendMessageBatch request's entries against the 1 MiB batch limit. */
export function checkBatchSize(entries: readonly WireMessage[]): Violation | undefined {
  const total = entries.reduce((sum, entry) => sum + messageBytes(entry), 0);
  if (total <= SQS_LIMITS.maxBatchBytes) return undefined;
  return {
    code: 'BatchRequestTooLong',
    message: `Batch requests cannot be longer than ${SQS_LIMITS.maxBatchBytes} bytes. You have sent ${total} bytes.`,
  };
}

function checkAttribute(name: string, value: WireAttribute): Violation | undefined {
  const invalid = (reason: string): Violation => ({ code: 'InvalidParameterValue', message: reason });
  if (!SQS_LIMITS.attributeName.test(name)) {
    return invalid(
      `Message (user) attribute name must be 1 to 256 characters of A-Z, a-z, 0-9, underscore, hyphen and period; '${printable(name)}' is not.`,
    );
  }
  if (SQS_LIMITS.reservedAttributePrefix.test(name)) {
    return invalid(`Message (user) attribute name '${name}' is reserved for use by Amazon SQS.`);
  }
  if (name.startsWith('.') || name.endsWith('.') || name.includes('..')) {
    return invalid(
      `Message (user) attribute name '${name}' must not start or end with a period or contain two periods in a row.`,
    );
  }
  const dataType = value.DataType;
  if (typeof dataType !== 'string' || dataType.length === 0) {
    return invalid(`The message attribute '${name}' must contain non-empty message attribute type.`);
  }
  if (
    dataType.length > SQS_LIMITS.maxDataTypeLength ||
    !SQS_LIMITS.dataType.test(dataType) ||
    firstDisallowedCharacter(dataType)
  ) {
    return invalid(`The message attribute '${name}' has an invalid message attribute type.`);
  }
  if (dataType.startsWith('Binary')) {
    if (typeof value.BinaryValue !== 'string' || value.BinaryValue.length === 0) {
      return invalid(`The message attribute '${name}' with type 'Binary' must use field 'Binary'.`);
    }
    return undefined;
  }
  const text = value.StringValue;
  if (typeof text !== 'string' || text.length === 0) {
    return invalid(`The message attribute '${name}' must contain non-empty message attribute value.`);
  }
  const badChar = firstDisallowedCharacter(text);
  if (badChar) {
    return invalid(
      `Invalid binary character '${badChar}' was found in the message attribute '${name}' value, the set of allowed characters is #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`,
    );
  }
  if (dataType.startsWith('Number') && !isSqsNumber(text)) {
    return invalid(`Can't cast the value of message (user) attribute '${name}' to a number.`);
  }
  return undefined;
}

function isSqsNumber(text: string): boolean {
  const match = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.exec(text.trim());
  if (!match) return false;
  const digits = (match[1] ?? '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  if (digits.length > SQS_LIMITS.maxNumberDigits) return false;
  const magnitude = Math.abs(Number(text));
  return (
    magnitude === 0 ||
    (magnitude <= SQS_LIMITS.maxNumberMagnitude && magnitude >= SQS_LIMITS.minNumberMagnitude)
  );
}

function attributesOf(raw: unknown): [string, WireAttribute][] | undefined {
  if (raw === undefined || raw === null) return [];
  if (typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.some(([, value]) => typeof value !== 'object' || value === null)) return undefined;
  return entries as [string, WireAttribute][];
}

function attributeBytes(name: string, value: WireAttribute): number {
  const dataType = typeof value.DataType === 'string' ? value.DataType : '';
  const valueBytes =
    typeof value.BinaryValue === 'string'
      ? Buffer.from(value.BinaryValue, 'base64').length
      : typeof value.StringValue === 'string'
        ? Buffer.byteLength(value.StringValue, 'utf8')
        : 0;
  return Buffer.byteLength(name, 'utf8') + Buffer.byteLength(dataType, 'utf8') + valueBytes;
}

function isIntegerIn(value: unknown, min: number, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function invalidValue(parameter: string, value: unknown, reason: string): Violation {
  return {
    code: 'InvalidParameterValue',
    message: `Value ${printable(String(value))} for parameter ${parameter} is invalid. Reason: ${reason}`,
  };
}

/** A name or number safe to echo in an error: at most 80 characters, anything but printable ASCII as `?`. */
function printable(text: string): string {
  return [...text]
    .slice(0, 80)
    .join('')
    .replace(/[^\x20-\x7e]/g, '?');
}
