-- The facts behind sharing decisions, chained in the trace (liaison/stores/facts.py): an entry that records a change
-- of a consent, an objection, the roster, a correspondent or a usual team names the row (fact_kind: its table,
-- fact_id: its key) and carries a digest of its content as the change left it (fact_digest: SHA-256 of the row's
-- columns, never the content itself). `liaison trace verify` and the decision point compare each row with the
-- digest the chain last recorded for it. An entry that records a line written to the anchor file has fact_kind
-- 'anchor' (fact_id: the line's number, fact_digest: the line's hash): a line the trace names and the file no
-- longer has is a cut anchor file. NULL on every other entry (and in the hash of those: older entries hold).
ALTER TABLE trace_entry ADD COLUMN fact_kind TEXT;
ALTER TABLE trace_entry ADD COLUMN fact_id TEXT;
ALTER TABLE trace_entry ADD COLUMN fact_digest TEXT;
CREATE INDEX trace_entry_fact ON trace_entry (fact_kind, fact_id, seq);
