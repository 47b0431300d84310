-- Issue 19 (finding 7): feedback is taken only for cards this service issued, and an accepted suggestion
-- only by an id the card carried; the card's suggestion uuids (space-separated, nothing else) are kept for that.
ALTER TABLE issued_card ADD COLUMN suggestions TEXT NOT NULL DEFAULT '';
