-- The circle room: a second encrypted room of the pathway for the team plus the non-health
-- professionals the policy admits (CSP R.1110-2), limited to their data categories.
ALTER TABLE pathway ADD COLUMN circle_room_id TEXT;
