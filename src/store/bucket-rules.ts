// The bucket configuration `npm run setup-bucket` applies (README, "Architecture", storage facts).
import type { CORSRule, LifecycleRule } from '@aws-sdk/client-s3';
import type { Config } from '../config.js';
import { DAY_MS } from '../lifecycle.js';

const DAY_SECONDS = DAY_MS / 1000;

/** Browsers PUT and GET straight to the bucket with exactly the headers the broker signs. */
export function corsRules(config: Pick<Config, 'corsOrigins'>): CORSRule[] {
  if (config.corsOrigins.length === 0) return [];
  return [
    {
      AllowedOrigins: [...config.corsOrigins],
      AllowedMethods: ['PUT', 'GET', 'HEAD'],
      AllowedHeaders: ['content-type', 'content-md5', 'if-none-match'],
      // Multipart clients read each part's ETag to complete the upload.
      ExposeHeaders: ['ETag'],
      MaxAgeSeconds: 3600,
    },
  ];
}

/**
 * A backstop behind reconciliation, never the first line: objects under `m/` expire one day after
 * retention, and incomplete multipart uploads are aborted after a day (or the commit window). Lifecycle counts from the
 * object's creation while retention counts from the commit, which may come up to the commit window
 * later: a window longer than a day adds its days, so lifecycle never removes a live message.
 */
export function lifecycleRules(config: Pick<Config, 'retentionDays' | 'commitWindowSeconds'>): LifecycleRule[] {
  const extraDays = Math.max(1, Math.ceil(config.commitWindowSeconds / DAY_SECONDS));
  return [
    {
      ID: 'expire-messages-after-retention',
      Status: 'Enabled',
      Filter: { Prefix: 'm/' },
      Expiration: { Days: config.retentionDays + extraDays },
    },
    {
      ID: 'abort-incomplete-multipart-uploads',
      Status: 'Enabled',
      Filter: { Prefix: '' },
      // A multipart upload may be completed until its commit deadline: never abort it sooner.
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: extraDays },
    },
  ];
}
