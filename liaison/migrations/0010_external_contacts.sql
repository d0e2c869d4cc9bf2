-- External MSSanté professionals the coordination recorded (`!equipe ajouter <adresse> <profession> [structure:…]`):
-- their profession and structure are facts of the sharing decisions (objections and consents by profession or
-- structure reach them too).
CREATE TABLE external_contact (
    address    TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    profession TEXT NOT NULL,
    structure  TEXT NOT NULL DEFAULT '',
    active     INTEGER NOT NULL DEFAULT 1,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Why an address is a correspondent of a pathway: its mail named the patient by INS (ins), the coordination
-- routed it by hand (hand), it answered one of our mails (thread), or it only used the pathway's address
-- (subaddress). Only ins and hand make it part of the team of care; a pathway code grants nothing by itself.
ALTER TABLE mss_correspondent ADD COLUMN basis TEXT NOT NULL DEFAULT 'ins';

-- A mail's sender, for deduplication by Message-ID per sender (not globally), and the address a read receipt
-- (MDN) is owed to once a member has read the mail in the room (only ever the sender itself).
ALTER TABLE mail_in ADD COLUMN sender TEXT;
ALTER TABLE mail_in ADD COLUMN mdn_to TEXT;
