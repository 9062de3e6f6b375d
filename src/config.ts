// The only module that reads process.env. Everything else receives a frozen Config.
import { existsSync } from 'node:fs';
import path from 'node:path';
import cron from 'node-cron';
import { envReader, type Env, type EnvReader } from './env-reader.js';

export type NodeEnv = 'development' | 'production' | 'test';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface StoreConfig {
  /** null: run the local R2 emulator (development only). */
  endpoint: string | null;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  forcePathStyle: boolean;
}

export interface JwtConfig {
  secret: string | null;
  jwksUrl: string | null;
  publicKey: string | null;
  issuer: string | null;
  audience: string;
  /** Longest token lifetime accepted: exp − iat, and the age now − iat (JWT_MAX_AGE_SECONDS). */
  maxAgeSeconds: number;
  /** How long a verified token is remembered (JWT_CACHE_SECONDS); absent or 0: never. */
  cacheSeconds?: number;
}

export interface Config {
  nodeEnv: NodeEnv;
  port: number;
  host: string;
  dataDir: string;
  /** null: run an embedded PostgreSQL (development only). */
  databaseUrl: string | null;
  /** PostgreSQL itself, when DATABASE_URL is a pooler: migrations run here. null: DATABASE_URL. */
  databaseDirectUrl: string | null;
  /** Named prepared statements; false behind PgBouncer in transaction mode (before 1.21). */
  databasePrepare: boolean;
  /** Most connections this instance's pool opens to DATABASE_URL. */
  databasePoolSize: number;
  /** Apply pending migrations at start; false when migrating is a release step of its own. */
  migrateOnStart: boolean;
  store: StoreConfig;
  jwt: JwtConfig;
  serviceDids: readonly string[];
  membership: 'enforce' | 'off';
  maxMessageBytes: number;
  multipartThresholdBytes: number;
  partSizeBytes: number;
  maxRecipients: number;
  uploadUrlTtlSeconds: number;
  commitWindowSeconds: number;
  downloadUrlTtlSeconds: number;
  retentionDays: number;
  deleteAfterAck: boolean;
  /** null: the server does not schedule the bucket audit. */
  reconcileAuditCron: string | null;
  /** A multipart reservation must declare the SHA-256 of the whole ciphertext (recipients verify it). */
  requireSha256: boolean;
  /** null: the server does not schedule reconciliation. */
  reconcileCron: string | null;
  maxPendingUploads: number;
  /** Bytes one DID may reserve in any rolling day (hour granularity), counted at reservation; 0: no quota. */
  maxBytesPerDay: number;
  /** Redis or Valkey for limits shared across instances; null: each instance limits on its own. */
  redisUrl: string | null;
  /** Requests a minute per DID (services exempt); 0 turns the limit off. */
  rateLimitPerMinute: number;
  corsOrigins: readonly string[];
  logLevel: LogLevel;
  /** Derived: fully embedded development on a loopback HOST with a JWT secret, which serves the /dev/ page. */
  devPage: boolean;
}

/** Development-only secrets: production refuses to start while any of these is in use. */
export const DEV_JWT_SECRET = 'dev-only-jwt-secret-never-use-in-production-0000';
export const DEV_R2_ACCESS_KEY_ID = 'dev-access-key-id';
export const DEV_R2_SECRET_ACCESS_KEY = 'dev-secret-access-key-never-use-in-production';
export const DEV_SERVICE_DID = 'did:web:localhost';

const MIB = 1024 * 1024;
/** R2 and S3 limits (README, "Architecture", storage facts). */
export const MIN_PART_BYTES = 5 * MIB;
export const MAX_PART_BYTES = 5 * 1024 * MIB;
/**
 * R2 allows 10,000 parts; we allow 1,000 so that /complete, which lists every part's ETag (the
 * store's own ETags run to ~170 characters), fits the API's 256 KiB body limit. With 5 GiB parts
 * that is still 5 TiB, R2's largest object.
 */
export const MAX_PARTS = 1_000;
/** Longest part ETag /complete accepts: MAX_PARTS of them fit in 256 KiB. */
export const MAX_ETAG_CHARS = 200;
export const MAX_SINGLE_PUT_BYTES = 5 * 1024 * MIB - 5 * MIB;
/** 10 GiB a day: five messages of the default largest size, thousands of ordinary attachments. */
export const DEFAULT_MAX_BYTES_PER_DAY = 10 * 1024 * MIB;
/** 1 PiB: far above any real quota, well inside what a JavaScript number holds exactly. */
const MAX_BYTES_PER_DAY_LIMIT = 1024 * 1024 * 1024 * MIB;
/** Presigned URLs on R2 live 1 s … 7 days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export const DID_PATTERN = '^(did:plc:[a-z2-7]{24}|did:web:[a-zA-Z0-9-]+(\\.[a-zA-Z0-9-]+)*(%3[aA][0-9]{1,5})?)$';
const DID_RE = new RegExp(DID_PATTERN);
export const isDid = (value: string): boolean => value.length <= 253 && DID_RE.test(value);

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Reads the environment once, in stages: read and validate each variable, cross-check them, then
 * apply the production rules. Every problem is collected and thrown together as a ConfigError, so
 * an operator fixes a deployment in one round instead of one variable per restart.
 */
export function loadConfig(
  env: Env = process.env,
  cwd = process.cwd(),
  /** false for tools that never verify a token (npm run migrate): no JWT key is demanded. */
  options: { auth?: boolean } = {},
): Readonly<Config> {
  const needsAuth = options.auth ?? true;
  const problems: string[] = [];
  const read = envReader(env, problems);
  const config = readConfig(read, cwd);
  crossCheck(config, read, needsAuth);
  productionRules(config, problems, needsAuth);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    ...config,
    serviceDids: Object.freeze([...config.serviceDids]),
    corsOrigins: Object.freeze([...config.corsOrigins]),
    store: Object.freeze(config.store),
    jwt: Object.freeze(config.jwt),
  });
}

/** Stage 2, validate: every variable on its own, into a Config. */
function readConfig(read: EnvReader, cwd: string): Config {
  const nodeEnv = read.oneOf<NodeEnv>('NODE_ENV', ['development', 'production', 'test'], 'development');
  const databaseUrl = read.opt('DATABASE_URL');
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    read.problem('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const databaseDirectUrl = read.opt('DATABASE_DIRECT_URL');
  if (databaseDirectUrl !== null && !/^postgres(ql)?:\/\//.test(databaseDirectUrl)) {
    read.problem('DATABASE_DIRECT_URL must start with postgres:// or postgresql://');
  }
  return {
    nodeEnv,
    port: read.int('PORT', 3000, 0, 65535),
    host: read.str('HOST', nodeEnv === 'production' ? '0.0.0.0' : '127.0.0.1'),
    dataDir: path.resolve(cwd, read.str('DATA_DIR', './.data')),
    databaseUrl,
    databaseDirectUrl,
    databasePrepare: read.bool('DATABASE_PREPARE', true),
    databasePoolSize: read.int('DATABASE_POOL_SIZE', 10, 1, 1000),
    migrateOnStart: read.bool('MIGRATE_ON_START', true),
    store: readStore(read),
    jwt: readJwt(read),
    serviceDids: readDids(read, 'SERVICE_DIDS'),
    membership: read.oneOf('MEMBERSHIP', ['enforce', 'off'] as const, 'enforce'),
    maxMessageBytes: read.int('MAX_MESSAGE_BYTES', 2 * 1024 * MIB, 1, 5 * 1024 * 1024 * MIB),
    multipartThresholdBytes: read.int('MULTIPART_THRESHOLD_BYTES', 100 * MIB, 1, MAX_SINGLE_PUT_BYTES),
    partSizeBytes: read.int('PART_SIZE_BYTES', 16 * MIB, MIN_PART_BYTES, MAX_PART_BYTES),
    maxRecipients: read.int('MAX_RECIPIENTS', 1000, 1, 100_000),
    uploadUrlTtlSeconds: read.int('UPLOAD_URL_TTL_SECONDS', 300, 1, MAX_PRESIGN_SECONDS),
    commitWindowSeconds: read.int('COMMIT_WINDOW_SECONDS', 3600, 1, MAX_PRESIGN_SECONDS),
    downloadUrlTtlSeconds: read.int('DOWNLOAD_URL_TTL_SECONDS', 300, 1, MAX_PRESIGN_SECONDS),
    retentionDays: read.int('RETENTION_DAYS', 30, 1, 3650),
    deleteAfterAck: read.bool('DELETE_AFTER_ACK', true),
    requireSha256: read.bool('REQUIRE_SHA256', true),
    reconcileCron: readCron(read),
    reconcileAuditCron: readCron(read, 'RECONCILE_AUDIT_CRON', '45 3 * * *'),
    maxPendingUploads: read.int('MAX_PENDING_UPLOADS', 20, 1, 100_000),
    maxBytesPerDay: read.int('MAX_BYTES_PER_DAY', DEFAULT_MAX_BYTES_PER_DAY, 0, MAX_BYTES_PER_DAY_LIMIT),
    rateLimitPerMinute: read.int('RATE_LIMIT_PER_MINUTE', 600, 0, 1_000_000),
    redisUrl: readRedisUrl(read),
    corsOrigins: readCorsOrigins(read),
    logLevel: read.oneOf<LogLevel>('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    devPage: false,
  };
}

function readStore(read: EnvReader): StoreConfig {
  const store: StoreConfig = {
    endpoint: read.url('R2_ENDPOINT'),
    bucket: read.str('R2_BUCKET', 'catbird-messages'),
    accessKeyId: read.str('R2_ACCESS_KEY_ID', DEV_R2_ACCESS_KEY_ID),
    secretAccessKey: read.str('R2_SECRET_ACCESS_KEY', DEV_R2_SECRET_ACCESS_KEY),
    region: read.str('R2_REGION', 'auto'),
    // The emulator only serves path-style; R2 accepts both, so path style is the safe default.
    forcePathStyle: read.bool('R2_FORCE_PATH_STYLE', true),
  };
  if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(store.bucket)) {
    read.problem(`R2_BUCKET must be a valid bucket name (3-63 of a-z, 0-9, -), got "${store.bucket}"`);
  }
  return store;
}

function readJwt(read: EnvReader): JwtConfig {
  const jwt: JwtConfig = {
    secret: read.opt('JWT_SECRET'),
    jwksUrl: read.url('JWT_JWKS_URL'),
    publicKey: read.opt('JWT_PUBLIC_KEY'),
    issuer: read.opt('JWT_ISSUER'),
    audience: read.str('JWT_AUDIENCE', 'mls-blob-broker'),
    maxAgeSeconds: read.int('JWT_MAX_AGE_SECONDS', 86_400, 60, 365 * 86_400),
    cacheSeconds: read.int('JWT_CACHE_SECONDS', 60, 0, 3600),
  };
  if (jwt.secret !== null && Buffer.byteLength(jwt.secret) < 32) read.problem('JWT_SECRET must be at least 32 bytes long');
  return jwt;
}

function readDids(read: EnvReader, name: string): string[] {
  const dids = read.list(name);
  for (const did of dids) {
    if (!isDid(did)) read.problem(`${name} holds "${did}", which is not a DID`);
  }
  return dids;
}

function readRedisUrl(read: EnvReader): string | null {
  const v = read.opt('REDIS_URL');
  if (v !== null && !/^rediss?:\/\/[^/]/.test(v)) read.problem(`REDIS_URL must be a redis:// or rediss:// URL, got "${v}"`);
  return v;
}

function readCron(read: EnvReader, name = 'RECONCILE_CRON', fallback = '*/10 * * * *'): string | null {
  const text = read.str(name, fallback);
  if (text === 'off') return null;
  if (!cron.validate(text)) read.problem(`${name} must be a cron expression or "off", got "${text}"`);
  return text;
}

function readCorsOrigins(read: EnvReader): string[] {
  const origins = read.list('CORS_ORIGINS');
  for (const origin of origins) {
    if (origin === '*' || !/^https?:\/\/[^/]+$/.test(origin)) {
      read.problem(`CORS_ORIGINS holds "${origin}"; list exact origins like https://app.example.com`);
    }
  }
  return origins;
}

const jwtKeySources = (jwt: JwtConfig): number => [jwt.secret, jwt.jwksUrl, jwt.publicKey].filter((v) => v !== null).length;

/** Stage 3, cross-check: rules between variables, and the development defaults they allow. */
function crossCheck(c: Config, read: EnvReader, needsAuth: boolean): void {
  if (c.databaseDirectUrl !== null && c.databaseUrl === null) {
    read.problem('DATABASE_DIRECT_URL needs DATABASE_URL (the embedded PostgreSQL has no pooler in front)');
  }
  if (c.store.endpoint !== null && (read.raw('R2_ACCESS_KEY_ID') === undefined || read.raw('R2_SECRET_ACCESS_KEY') === undefined)) {
    read.problem('R2_ENDPOINT is set, so R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY must be set too');
  }
  const keySources = jwtKeySources(c.jwt);
  if (keySources > 1) read.problem('set only one of JWT_SECRET, JWT_JWKS_URL and JWT_PUBLIC_KEY');
  if (c.maxMessageBytes > c.multipartThresholdBytes && Math.ceil(c.maxMessageBytes / c.partSizeBytes) > MAX_PARTS) {
    read.problem(`MAX_MESSAGE_BYTES needs more than ${MAX_PARTS} parts of PART_SIZE_BYTES; raise PART_SIZE_BYTES`);
  }
  if (c.multipartThresholdBytes < c.partSizeBytes && c.maxMessageBytes > c.multipartThresholdBytes) {
    // A multipart upload must have at least one full part plus the rest; smaller is a single PUT.
    read.problem('MULTIPART_THRESHOLD_BYTES must be at least PART_SIZE_BYTES');
  }
  if (c.uploadUrlTtlSeconds > c.commitWindowSeconds) {
    read.problem('UPLOAD_URL_TTL_SECONDS must not exceed COMMIT_WINDOW_SECONDS (URLs never outlive the commit window)');
  }
  // The development secret is published in this file: it is only ever used by a broker that runs
  // entirely on its embedded parts and listens on loopback, where a token minted with it can reach
  // nothing but throwaway local data.
  const production = c.nodeEnv === 'production';
  const localOnly = !production && c.databaseUrl === null && c.store.endpoint === null && isLoopback(c.host);
  if (keySources === 0) {
    if (localOnly) c.jwt.secret = DEV_JWT_SECRET;
    else if (!production && needsAuth) {
      read.problem(
        'set a JWT key (JWT_SECRET, JWT_JWKS_URL or JWT_PUBLIC_KEY): the development key is only used with the embedded database and bucket on a loopback HOST',
      );
    }
  }
  if (c.serviceDids.length === 0 && localOnly) c.serviceDids = [DEV_SERVICE_DID];
  c.devPage = localOnly && c.jwt.secret !== null && c.serviceDids.length > 0;
}

const secureUrl = (url: string): boolean => {
  const u = new URL(url);
  return u.protocol === 'https:' || isLoopback(u.hostname.replace(/^\[|\]$/g, ''));
};

/** Stage 4, production rules: nothing embedded and no development secret. */
function productionRules(c: Config, problems: string[], needsAuth: boolean): void {
  if (c.nodeEnv !== 'production') return;
  if (c.databaseUrl === null) problems.push('production needs DATABASE_URL (the embedded PostgreSQL is for development)');
  if (c.store.endpoint === null) problems.push('production needs R2_ENDPOINT (the local R2 emulator is for development)');
  if (c.store.accessKeyId === DEV_R2_ACCESS_KEY_ID || c.store.secretAccessKey === DEV_R2_SECRET_ACCESS_KEY) {
    problems.push('production needs real R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY, not the emulator keys');
  }
  if (jwtKeySources(c.jwt) === 0 && needsAuth) problems.push('production needs a JWT key: JWT_SECRET, JWT_JWKS_URL or JWT_PUBLIC_KEY');
  if (c.jwt.secret === DEV_JWT_SECRET) problems.push('production refuses the development JWT_SECRET');
  // Over plain http a network attacker could serve their own keys (and mint any token) or read
  // and alter every store request: both travel over TLS in production.
  // (A loopback address never crosses a network: a sidecar or tunnel on the same host may use http.)
  if (c.store.endpoint !== null && !secureUrl(c.store.endpoint)) problems.push('production needs an https:// R2_ENDPOINT (http only on loopback)');
  if (c.jwt.jwksUrl !== null && !secureUrl(c.jwt.jwksUrl)) problems.push('production needs an https:// JWT_JWKS_URL (http only on loopback)');
}

/** Reads `.env` from the working directory into the environment when present (never overriding). */
export function loadDotEnv(cwd = process.cwd()): void {
  const file = path.join(cwd, '.env');
  if (existsSync(file)) process.loadEnvFile(file);
}

/**
 * The SDK warns on Node 20 at every start; the project pins SDK versions that support it. Only
 * development and tests hide it: a production operator must see that their Node is leaving support.
 */
export function quietAwsSdkNodeWarning(env: NodeJS.ProcessEnv = process.env): void {
  if (env.NODE_ENV === 'production') return;
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/**
 * BROKER_URL for the command-line clients (`npm run demo`): the origin of a running broker, or
 * null when unset (the tool then starts one itself). Not a setting of the broker.
 */
export function readBrokerUrl(env: Env = process.env): string | null {
  const raw = env.BROKER_URL?.trim();
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError([`BROKER_URL "${raw}" is not a URL`]);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError([`BROKER_URL must be http(s), not ${url.protocol}`]);
  return url.origin;
}
