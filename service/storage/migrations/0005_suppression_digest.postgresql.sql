-- Issue 17: one round trip for a hook call whose suppression states this process already knows.
-- A worker keeps the states it last read or wrote for a patient key, with their digest. It decides from them
-- and sends, in one query string: the patient's lock, myositis_expect_suppression (raises MY001 when the
-- states are no longer those: another worker, instance or feedback changed them), the writes, and the new
-- states. On MY001 the transaction is rolled back and the call reads the states first. The worker computes
-- the digest of the states it gets back the same way (service/storage/sql_suppression.py, _digest: a test
-- compares the two); a worker that computed it wrongly would only ever take the three-round-trip path.
-- PL/pgSQL, not SQL: its query's plan is kept for the session (a SQL function's is made again at each call).
CREATE FUNCTION myositis_suppression_digest(p_key TEXT) RETURNS TEXT LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT COALESCE(md5(string_agg(
        concat_ws('|', kind, fingerprint, shows_unanswered, COALESCE(suppressed_until, '-'), until_change, answered),
        ',' ORDER BY kind COLLATE "C")), '')
    FROM suppression WHERE patient_key = p_key);
END
$$;
CREATE FUNCTION myositis_expect_suppression(p_key TEXT, expected TEXT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF myositis_suppression_digest(p_key) <> expected THEN
        RAISE EXCEPTION 'suppression states changed' USING ERRCODE = 'MY001';
    END IF;
END
$$;
