-- Issue 12: the knowledge base version each card was built from, so feedback can be read per version.
ALTER TABLE issued_card ADD COLUMN knowledge_version TEXT NOT NULL DEFAULT '';
