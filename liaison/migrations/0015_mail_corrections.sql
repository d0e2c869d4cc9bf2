-- A room message edited or deleted after it was mailed: the correction (`edit`) or « message retiré » notice
-- (`retract`) is a mail of its own, naming the mail it follows (bridge/corrections.py), so that a later edit replaces
-- a correction still queued, a deletion withdraws it, and a message is said withdrawn once.
ALTER TABLE mail_out ADD COLUMN corrects TEXT;
ALTER TABLE mail_out ADD COLUMN correction TEXT;
CREATE INDEX mail_out_corrects ON mail_out (corrects);
