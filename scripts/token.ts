// npm run token -- [<did>] [--service] [--ttl <s>]: a development token signed with JWT_SECRET.
import { isDid } from '../src/config.js';
import { cliArgs, cliConfig, fail } from './cli.js';
import { mintDevToken } from './dev-token.js';

const DEV_USER_DID = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa';

const args = cliArgs(
  `Usage: npm run token -- [<did>] [--ttl <seconds>]
       npm run token -- --service [--ttl <seconds>]

Prints a development token signed with JWT_SECRET for <did> (default ${DEV_USER_DID}),
or with --service for the first DID in SERVICE_DIDS. --ttl: lifetime in seconds (default 3600).`,
  { service: { type: 'boolean' }, ttl: { type: 'string' } },
  1,
);
const positionals = args.positionals;
const flags = { has: (name: 'service') => args.flag(name) };
const values = { get: (name: 'ttl') => args.value(name) };
const config = cliConfig();
if (config.jwt.secret === null) fail('npm run token signs with JWT_SECRET; this configuration verifies with a public key instead');
let did = positionals[0] ?? DEV_USER_DID;
if (flags.has('service')) {
  if (positionals[0] !== undefined) fail('give either a DID or --service, not both', 2);
  const first = config.serviceDids[0];
  if (first === undefined) fail('--service needs SERVICE_DIDS');
  did = first;
}
if (!isDid(did)) fail(`"${did}" is not a DID (did:plc:<24 base32 chars> or did:web:<host>)`, 2);
const ttl = Number(values.get('ttl') ?? Math.min(3600, config.jwt.maxAgeSeconds));
if (!Number.isInteger(ttl) || ttl < 1 || ttl > config.jwt.maxAgeSeconds) {
  fail(`--ttl must be whole seconds between 1 and ${config.jwt.maxAgeSeconds} (JWT_MAX_AGE_SECONDS)`, 2);
}

process.stdout.write(`${await mintDevToken(config, did, ttl)}\n`);
