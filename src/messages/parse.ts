/** Parsing untrusted bodies into typed messages, with errors that name the message type and the field. */
import type { z } from 'zod';
import { isValidationError, ValidationError } from '../errors.js';
import { isBrokerRecorded, messageFromTestbed } from './recorded.js';
import { domainEventSchemas, type DomainEvent, type DomainEventData, type DomainEventType } from './domainEvents.js';
import {
  MESSAGE_TYPES,
  messageSchemas,
  testbedMessageSchemas,
  type Message,
  type MessageKind,
  type MessageType,
  type TestbedMessage,
} from './schemas.js';

/** A `msg_type` (or stored event type) that is not part of the vocabulary. */
export class UnknownMessageTypeError extends ValidationError {}

export type MessageProfile = 'swf' | 'testbed';

export interface ParseOptions {
  /** `swf` (default): our own messages, every added field required. `testbed`: the Python testbed's bodies. */
  profile?: MessageProfile;
}

export type ParseResult<T> = { success: true; message: T } | { success: false; error: ValidationError };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const MESSAGE_TYPE_SET: ReadonlySet<string> = new Set(MESSAGE_TYPES);
export const isMessageType = (t: unknown): t is MessageType => typeof t === 'string' && MESSAGE_TYPE_SET.has(t);

/**
 * Which schema a body belongs to. The DAQ's `end_run` is flat; the workers' `end_run` is content-nested
 * (it has `content`), so it is `worker_end_run`.
 */
export function messageKind(body: { msg_type: string; content?: unknown }): MessageKind {
  if (!isMessageType(body.msg_type)) {
    throw new UnknownMessageTypeError(`unknown msg_type ${JSON.stringify(body.msg_type)}`, {
      field: 'msg_type',
      messageType: body.msg_type,
    });
  }
  if (body.msg_type === 'end_run' && body.content !== undefined) return 'worker_end_run';
  return body.msg_type;
}

/** Whether an `end_run` is the workers' (content-nested) one. */
export const isWorkerEndRun = (m: Message): m is Extract<Message, { msg_type: 'end_run'; content: unknown }> =>
  m.msg_type === 'end_run' && (m as { content?: unknown }).content !== undefined;

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (!isRecord(v) && !Array.isArray(v)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  if (valueAt(input, issue.path) === undefined && issue.code !== 'custom') {
    if (issue.code === 'invalid_type') return `is missing (expected ${issue.expected})`;
    if (issue.code === 'invalid_value')
      return `is missing (expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')})`;
    return 'is missing';
  }
  if (issue.code === 'invalid_type') {
    const v = valueAt(input, issue.path);
    return `expected ${issue.expected}, got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v} ${JSON.stringify(v)}`;
  }
  return issue.message.replace(/^Invalid input: /, '');
}

/** Turns zod issues into one `ValidationError` naming what was validated, the first field and what was wrong. */
export function issuesToError(
  what: string,
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  details: { messageType?: string } = {},
): ValidationError {
  const parts = issues.map((issue) => {
    const field = issue.path.map(String).join('.');
    return `${field === '' ? '(body)' : field} ${describeIssue(issue, input)}`;
  });
  const first = issues[0];
  const field = first ? first.path.map(String).join('.') : undefined;
  return new ValidationError(`invalid ${what}: ${parts.join('; ')}`, {
    ...details,
    ...(field ? { field } : {}),
  });
}

export function safeParseMessage(input: unknown, options?: ParseOptions & { profile?: 'swf' }): ParseResult<Message>;
export function safeParseMessage(
  input: unknown,
  options: ParseOptions & { profile: 'testbed' },
): ParseResult<TestbedMessage>;
export function safeParseMessage(input: unknown, options: ParseOptions = {}): ParseResult<Message | TestbedMessage> {
  if (!isRecord(input)) {
    return {
      success: false,
      error: new ValidationError(
        `a message must be a JSON object, got ${Array.isArray(input) ? 'array' : typeof input}`,
        {
          field: '(body)',
        },
      ),
    };
  }
  const msgType = input.msg_type;
  if (typeof msgType !== 'string') {
    return {
      success: false,
      error: new ValidationError(
        `invalid message: msg_type ${msgType === undefined ? 'is missing' : `must be a string, got ${JSON.stringify(msgType)}`}`,
        { field: 'msg_type' },
      ),
    };
  }
  let kind: MessageKind;
  try {
    kind = messageKind({ msg_type: msgType, content: input.content });
  } catch (e: unknown) {
    if (isValidationError(e)) return { success: false, error: e };
    throw e;
  }
  const schemas = options.profile === 'testbed' ? testbedMessageSchemas : messageSchemas;
  const result = (schemas[kind] as z.ZodType).safeParse(input);
  if (result.success) return { success: true, message: result.data as Message };
  const what = kind === 'worker_end_run' ? 'end_run (worker) message' : `${msgType} message`;
  return { success: false, error: issuesToError(what, result.error.issues, input, { messageType: msgType }) };
}

/**
 * A typed message, or a `ValidationError` (thrown) naming the `msg_type`, the field and what was wrong.
 * An unknown `msg_type` throws `UnknownMessageTypeError`.
 */
export function parseMessage(input: unknown, options?: ParseOptions & { profile?: 'swf' }): Message;
export function parseMessage(input: unknown, options: ParseOptions & { profile: 'testbed' }): TestbedMessage;
export function parseMessage(input: unknown, options: ParseOptions = {}): Message | TestbedMessage {
  const result =
    options.profile === 'testbed' ? safeParseMessage(input, { profile: 'testbed' }) : safeParseMessage(input);
  if (!result.success) throw result.error;
  return result.message;
}

const DOMAIN_TYPE_SET: ReadonlySet<string> = new Set(Object.keys(domainEventSchemas));
export const isDomainEventType = (t: unknown): t is DomainEventType => typeof t === 'string' && DOMAIN_TYPE_SET.has(t);

/** Validates a domain event's data; throws `ValidationError` naming the type and field. */
export function parseDomainEvent<T extends DomainEventType>(type: T, data: unknown): DomainEventData<T> {
  if (!isDomainEventType(type)) {
    throw new UnknownMessageTypeError(`unknown event type ${JSON.stringify(type)}`, {
      field: 'type',
      messageType: type,
    });
  }
  const result = (domainEventSchemas[type] as z.ZodType).safeParse(data);
  if (!result.success) throw issuesToError(`${type} event`, result.error.issues, data, { messageType: type });
  return result.data as DomainEventData<T>;
}

/** A stored event read back: a wire message (type = `msg_type`) or a domain event. */
export type ParsedEvent = { kind: 'message'; type: MessageType; message: Message } | ({ kind: 'domain' } & DomainEvent);

/**
 * Parses a stored event's `type` and `data`. For a message the event type must equal the body's `msg_type`.
 * Throws `ValidationError`; an unknown type throws `UnknownMessageTypeError`.
 */
export function parseEvent(event: { type: string; data: unknown; metadata?: unknown }): ParsedEvent {
  if (isMessageType(event.type)) {
    if (isRecord(event.data) && event.data.msg_type !== event.type) {
      throw new ValidationError(
        `event type '${event.type}' does not match its body's msg_type ${JSON.stringify(event.data.msg_type)}`,
        { field: 'msg_type', messageType: event.type },
      );
    }
    // A frame the gateway recorded from the real testbed: its body is the testbed's, read with that profile.
    if (isBrokerRecorded(event.metadata)) {
      const body = parseMessage(event.data, { profile: 'testbed' });
      return { kind: 'message', type: event.type, message: messageFromTestbed(body, event.metadata) };
    }
    return { kind: 'message', type: event.type, message: parseMessage(event.data) };
  }
  if (isDomainEventType(event.type)) {
    return { kind: 'domain', type: event.type, data: parseDomainEvent(event.type, event.data) } as ParsedEvent;
  }
  throw new UnknownMessageTypeError(`unknown event type ${JSON.stringify(event.type)}`, {
    field: 'type',
    messageType: event.type,
  });
}
