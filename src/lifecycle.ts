// When may an object be deleted: the one home of retention, the ack grace, the expiry margin and
// the cut-offs. Download URLs are cut at these instants (services) and reconciliation deletes at
// them (jobs), so the two can never disagree (invariants 4 and 5).
import type { Config } from './config.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/**
 * Margin past a deadline before the reconciler acts on it. The commit itself is race-free (it
 * locks the upload row); the margin absorbs clock skew between broker instances and a PUT that
 * started before its URL expired and is still streaming.
 */
export const EXPIRY_MARGIN_MS = 5 * MINUTE_MS;
/** Fully acknowledged messages stay this long, so a recipient that acked early can still re-fetch. */
export const ACK_GRACE_MS = HOUR_MS;

type Rules = Pick<Config, 'retentionDays' | 'deleteAfterAck'>;

/** The cut-off instants at a clock reading: what is older than each may be deleted. */
export function cutoffs(config: Pick<Config, 'retentionDays' | 'commitWindowSeconds'>, now: Date) {
  const t = now.getTime();
  return {
    /** Pending uploads whose deadline is before this are expired. */
    expiry: new Date(t - EXPIRY_MARGIN_MS),
    /** Messages (and finished upload rows) created before this are past retention. */
    retention: new Date(t - config.retentionDays * DAY_MS),
    /** Messages fully acknowledged before this are deleted (DELETE_AFTER_ACK). */
    acked: new Date(t - ACK_GRACE_MS),
    /** Objects without rows last modified before this are strays. */
    stray: new Date(t - config.commitWindowSeconds * 1000 - EXPIRY_MARGIN_MS),
    /**
     * Byte quota hours (sql/00007) that began before this have left the rolling day: the current
     * hour and the 24 before it count. Taken at now − the margin, so a broker whose clock is behind
     * the reconciler's still finds every hour it counts.
     */
    quotaHours: new Date(Math.floor((t - EXPIRY_MARGIN_MS) / HOUR_MS) * HOUR_MS - DAY_MS),
  };
}

/**
 * The instant after which reconciliation may delete a message: the end of retention, or the end
 * of the grace after every recipient acked (DELETE_AFTER_ACK), whichever comes first.
 */
export function messageDeletableAfter(config: Rules, m: { createdAt: Date; fullyAckedAt: Date | null }): Date {
  const retentionEnd = m.createdAt.getTime() + config.retentionDays * DAY_MS;
  if (!config.deleteAfterAck || m.fullyAckedAt === null) return new Date(retentionEnd);
  return new Date(Math.min(retentionEnd, m.fullyAckedAt.getTime() + ACK_GRACE_MS));
}
