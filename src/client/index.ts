// The browser- and Node-compatible client of mls-blob-broker (README, "API reference").
export { BrokerClient, type FetchedMessage } from './client.js';
export { BrokerClientError, BrokerError, IntegrityError, NetworkError, ResumeError, StoreError } from './errors.js';
export { Md5, md5 } from './md5.js';
export { toBase64, sha256Base64 } from './encoding.js';
export type * from './types.js';
export type * from './wire.js';
