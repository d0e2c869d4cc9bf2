-- A member's sex (F, M; NULL when unknown), so their profession is named in their gender (« Sophie Bernard
-- (Infirmière) »): given in the configuration's roster, or read in the profession as written there.
ALTER TABLE roster_member ADD COLUMN sex TEXT;
