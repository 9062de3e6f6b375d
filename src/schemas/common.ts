// Building blocks of the route schemas (JSON Schema, compiled once by ajv).
import { DID_PATTERN } from '../config.js';

export const did = { type: 'string', maxLength: 253, pattern: DID_PATTERN } as const;
export const uuid = { type: 'string', format: 'uuid' } as const;
export const convoId = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' } as const;
export const md5 = { type: 'string', pattern: '^[A-Za-z0-9+/]{22}==$', description: 'base64 of the 16-byte MD5' } as const;
export const sha256 = { type: 'string', pattern: '^[A-Za-z0-9+/]{43}=$', description: 'base64 of the 32-byte SHA-256' } as const;
export const time = { type: 'string', format: 'date-time' } as const;

export const object = (properties: Record<string, unknown>, required: string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});

export const messageIdParams = object({ message_id: uuid }, ['message_id']);
export const convoIdParams = object({ convo_id: convoId }, ['convo_id']);
