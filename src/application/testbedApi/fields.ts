/**
 * Request bodies checked the way the testbed monitor's Django REST Framework serializers check them, so a real agent
 * gets the answers it was written against: unknown fields are ignored, a bad field is a 400 whose body maps the
 * field to its messages (`{"stf_filename": ["This field is required."]}`), and the messages are DRF's own words.
 */
import { ValidationError } from '../../errors.js';

export type FieldKind = 'int' | 'float' | 'str' | 'bool' | 'json' | 'datetime' | 'choice';

export interface FieldSpec {
  kind: FieldKind;
  required?: boolean;
  nullable?: boolean;
  maxLength?: number;
  choices?: readonly string[];
  /** For ints: the smallest value accepted. */
  min?: number;
}

export type FieldSpecs = Record<string, FieldSpec>;
export type FieldErrors = Record<string, string[]>;

/** A 400 with DRF's body: field name → messages (`non_field_errors` for the body as a whole). */
export class FieldValidationError extends ValidationError {
  constructor(readonly errors: FieldErrors) {
    const [field, messages] = Object.entries(errors)[0] ?? ['non_field_errors', ['Invalid data.']];
    super(`${field}: ${messages.join(' ')}`, { field });
  }
}

export const isFieldValidationError = (e: unknown): e is FieldValidationError => e instanceof FieldValidationError;

/** The largest JSON value (as text) a JSON field takes: the log's events are at most 1 MiB. */
const MAX_JSON_CHARS = 256 * 1024;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkOne(name: string, spec: FieldSpec, raw: unknown): { value?: unknown; error?: string } {
  if (raw === null) {
    return spec.nullable ? { value: null } : { error: 'This field may not be null.' };
  }
  switch (spec.kind) {
    case 'int': {
      let n: number | undefined;
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) n = raw;
      else if (typeof raw === 'string' && /^\s*-?\d{1,15}\s*$/.test(raw)) n = Number(raw);
      else if (typeof raw === 'number' && Number.isFinite(raw) && Math.trunc(raw) === raw) n = raw;
      if (n === undefined || !Number.isSafeInteger(n)) return { error: 'A valid integer is required.' };
      if (spec.min !== undefined && n < spec.min)
        return { error: `Ensure this value is greater than or equal to ${spec.min}.` };
      return { value: n };
    }
    case 'float': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      return Number.isFinite(n) ? { value: n } : { error: 'A valid number is required.' };
    }
    case 'bool': {
      if (typeof raw === 'boolean') return { value: raw };
      if (raw === 1 || raw === 'true' || raw === 'True' || raw === '1') return { value: true };
      if (raw === 0 || raw === 'false' || raw === 'False' || raw === '0') return { value: false };
      return { error: 'Must be a valid boolean.' };
    }
    case 'str':
    case 'choice': {
      if (typeof raw !== 'string' && typeof raw !== 'number') return { error: 'Not a valid string.' };
      const s = String(raw);
      if (spec.kind === 'choice') {
        return spec.choices?.includes(s) ? { value: s } : { error: `"${s.slice(0, 100)}" is not a valid choice.` };
      }
      if (s.length === 0 && spec.required) return { error: 'This field may not be blank.' };
      if (spec.maxLength !== undefined && s.length > spec.maxLength)
        return { error: `Ensure this field has no more than ${spec.maxLength} characters.` };
      return { value: s };
    }
    case 'datetime': {
      if (
        typeof raw !== 'string' ||
        raw.length > 64 ||
        !/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d/.test(raw) ||
        Number.isNaN(Date.parse(raw))
      )
        return {
          error:
            'Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].',
        };
      return { value: raw };
    }
    case 'json': {
      let text: string;
      try {
        text = JSON.stringify(raw);
      } catch {
        return { error: 'Value must be valid JSON.' };
      }
      if (text.length > MAX_JSON_CHARS)
        return { error: `Ensure this value is at most ${MAX_JSON_CHARS} characters of JSON.` };
      return { value: raw };
    }
    default: {
      const never: never = spec.kind;
      return { error: `unknown field kind ${String(never)} for ${name}` };
    }
  }
}

/**
 * Checks `body` against `specs`. `partial` (a PATCH) skips missing required fields. Returns only the fields the
 * specs know (DRF drops the others silently); throws FieldValidationError with every bad field.
 */
export function checkFields(
  body: unknown,
  specs: FieldSpecs,
  options: { partial?: boolean } = {},
): Record<string, unknown> {
  if (!isRecord(body)) {
    throw new FieldValidationError({
      non_field_errors: [`Invalid data. Expected a dictionary, but got ${Array.isArray(body) ? 'list' : typeof body}.`],
    });
  }
  const out: Record<string, unknown> = {};
  const errors: FieldErrors = {};
  for (const [name, spec] of Object.entries(specs)) {
    if (!Object.hasOwn(body, name) || body[name] === undefined) {
      if (spec.required && !options.partial) errors[name] = ['This field is required.'];
      continue;
    }
    const r = checkOne(name, spec, body[name]);
    if (r.error !== undefined) errors[name] = [r.error];
    else out[name] = r.value;
  }
  if (Object.keys(errors).length > 0) throw new FieldValidationError(errors);
  return out;
}
