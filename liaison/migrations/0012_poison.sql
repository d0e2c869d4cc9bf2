-- The bridge's durable poison counter: passes over an inbound mail that did not end, because the mail raised an
-- error or because the bridge died while on it (killed for memory, a crash in a C extension). Counted before each
-- pass, given back when the pass ends in « try again later » (homeserver away): a mail that broke the bridge
-- POISON_AFTER times (bridge/inbound.py) goes to quarantine, across restarts.
-- (mss_quarantine.state gains `expired`: a mail still waiting when its raw text was erased by the retention of
-- bridge.quarantine_keep_days; its record stays, nothing is left to route.)
ALTER TABLE mail_in ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
