// One postgres.js instance per process, built by the context and passed down.
import postgres from 'postgres';

export type Sql = postgres.Sql<Record<string, never>>;
/** A transaction-scoped sql, or the pool itself: query functions accept either. */
export type Tx = postgres.TransactionSql<Record<string, never>> | Sql;

export function createSql(url: string, options: { max?: number; applicationName?: string } = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 5,
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'mls-blob-broker' },
    // int8 columns (sizes, counts) fit in a double far beyond R2's 5 TiB object limit.
    types: {
      bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
    },
  }) as unknown as Sql;
}

/** True for errors that mean "the database cannot be reached", as opposed to a bad query. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    code === 'ENOTFOUND' ||
    code === 'CONNECT_TIMEOUT' ||
    code === 'CONNECTION_CLOSED' ||
    code === 'CONNECTION_ENDED' ||
    code === 'CONNECTION_DESTROYED' ||
    code === '57P01' || // admin_shutdown
    code === '57P03' || // cannot_connect_now
    code === '53300' // too_many_connections
  );
}

/** One round trip: the database answers. */
export async function ping(sql: Tx): Promise<void> {
  await sql`select 1`;
}
