-- When the bot applied a consent's expiry: everyone it no longer covered removed from the patient's rooms, once,
-- also after a restart past its time (bot/expiries.py).
ALTER TABLE consent ADD COLUMN expiry_applied_at BIGINT;
