// One postgres.js instance per process, built by the context and passed down.
import postgres from 'postgres';

export type Sql = postgres.Sql<Record<string, never>>;
/** The connection of one transaction (see transaction()). */
export type TxSql = postgres.ReservedSql<Record<string, never>>;
/** A transaction's connection, or the pool itself: query functions accept either. */
export type Tx = postgres.TransactionSql<Record<string, never>> | TxSql | Sql;

export interface SqlOptions {
  max?: number;
  applicationName?: string;
  /**
   * Named prepared statements (postgres.js's default). Off behind PgBouncer in transaction mode
   * before 1.21: a statement prepared on one server connection is unknown on the next.
   */
  prepare?: boolean;
  /** Called with each statement's text as it is sent (tests count round trips with it). */
  onQuery?: (statement: string) => void;
  /** Called with each NOTICE the server sends (default: ignored). */
  onNotice?: (message: string) => void;
}

export function createSql(url: string, options: SqlOptions = {}): Sql {
  const onQuery = options.onQuery;
  return postgres(url, {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 5,
    prepare: options.prepare ?? true,
    onnotice: options.onNotice ? (n: { message?: string }) => options.onNotice!(String(n.message ?? '')) : () => {},
    ...(onQuery ? { debug: (_connection: number, statement: string) => onQuery(statement) } : {}),
    connection: { application_name: options.applicationName ?? 'mls-blob-broker' },
    // int8 columns (sizes, counts) fit in a double far beyond R2's 5 TiB object limit.
    types: {
      bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
    },
  }) as unknown as Sql;
}

/** PostgreSQL ended a transaction we asked to commit with a rollback: nothing of it was written. */
export class TransactionRolledBack extends Error {
  readonly code = 'TRANSACTION_ROLLED_BACK';
  constructor() {
    super('COMMIT was answered with ROLLBACK: the transaction had failed, nothing was written');
    this.name = 'TransactionRolledBack';
  }
}

/**
 * Runs `fn` in one transaction on a connection of its own, and resolves only when PostgreSQL
 * answers the COMMIT with COMMIT. Use this, never `sql.begin`: a transaction in which any statement
 * failed is ended by COMMIT without an error — PostgreSQL answers "ROLLBACK" — and postgres.js's
 * begin() resolves as if it had committed. Behind PgBouncer in transaction mode with prepared
 * statements that is exactly what happened (the COMMIT's own prepared statement was unknown to the
 * server connection, postgres.js re-prepared it inside the now failed transaction, and the retry
 * "succeeded" as a rollback): acknowledged writes were lost that way.
 */
export async function transaction<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  const tx = await sql.reserve();
  try {
    // Simple protocol: no prepared statement of ours stands between us and the transaction's end.
    await tx`begin`.simple();
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      await tx`rollback`.simple().catch(() => {});
      throw err;
    }
    const done = await tx`commit`.simple();
    if (done.command !== 'COMMIT') throw new TransactionRolledBack();
    return result;
  } finally {
    tx.release();
  }
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
