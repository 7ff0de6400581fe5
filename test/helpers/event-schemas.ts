import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { EVENT_SCHEMA_FILES, readSchema } from '#infra/event-schemas.ts';

/**
 * A validator for each schema of `schemas/` (docs/contract.md, "The event contract"), by file name. The files are
 * JSON Schema draft 4 for the EventBridge schema registry and use only keywords that mean the same in draft 7,
 * which Ajv implements: their `$schema` is dropped before compiling (`draftSpecificKeywords` says which keywords
 * would differ). Ajv's `format` checks come from ajv-formats (`date-time`).
 */
export function schemaValidators(): ReadonlyMap<string, ValidateFunction> {
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strictTypes: false });
  addFormats.default(ajv, ['date-time']);
  ajv.addKeyword({ keyword: 'x-amazon-events-source', schemaType: 'string' });
  ajv.addKeyword({ keyword: 'x-amazon-events-detail-type', schemaType: 'string' });
  return new Map(
    EVENT_SCHEMA_FILES.map(({ file }) => {
      const { $schema: _, ...schema } = readSchema(file);
      return [file, ajv.compile(schema)];
    }),
  );
}

/** Keywords whose meaning differs between draft 4 and draft 7 (or that draft 4 lacks): the schemas use none. */
export const DRAFT_SPECIFIC_KEYWORDS = [
  'const',
  'contains',
  'propertyNames',
  'if',
  'then',
  'else',
  'exclusiveMinimum',
  'exclusiveMaximum',
  '$id',
  'examples',
  'readOnly',
] as const;

/** Every keyword used anywhere in a schema (keys of schema objects, not of `properties` or `definitions`). */
export function keywordsOf(schema: unknown): Set<string> {
  const found = new Set<string>();
  const visit = (node: unknown, isMap: boolean): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, false);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (isMap) {
        visit(value, false);
        continue;
      }
      found.add(key);
      if (key === 'enum') continue;
      visit(value, key === 'properties' || key === 'definitions');
    }
  };
  visit(schema, false);
  return found;
}

/** Ajv's errors as one line each (`/message/to must match pattern ...`), for a failing expectation's message. */
export function errorsOf(validate: ValidateFunction): string[] {
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''}`);
}
