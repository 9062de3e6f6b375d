// The part MD5s clients declare for multipart uploads. All SQL lives in src/db.
import type { Tx } from './sql.js';

export interface PartMd5 {
  partNumber: number;
  /** base64 of the 16-byte MD5. */
  md5: string;
}

/** Records (or replaces) declared part MD5s, in one statement. */
export async function declarePartMd5s(sql: Tx, messageId: string, parts: readonly PartMd5[]): Promise<void> {
  if (parts.length === 0) return;
  const rows = parts.map((p) => ({ message_id: messageId, part_number: p.partNumber, md5: p.md5 }));
  await sql`
    insert into upload_parts ${sql(rows, 'message_id', 'part_number', 'md5')}
    on conflict (message_id, part_number) do update set md5 = excluded.md5`;
}

/** Declared MD5s by part number: of the given parts, or of every part when `partNumbers` is null. */
export async function partMd5s(sql: Tx, messageId: string, partNumbers: readonly number[] | null): Promise<Map<number, string>> {
  const rows =
    partNumbers === null
      ? await sql<{ part_number: number; md5: string }[]>`
          select part_number, md5 from upload_parts where message_id = ${messageId}`
      : await sql<{ part_number: number; md5: string }[]>`
          select part_number, md5 from upload_parts
           where message_id = ${messageId} and part_number = any(${sql.array(partNumbers as number[])}::int[])`;
  return new Map(rows.map((r) => [r.part_number, r.md5]));
}
