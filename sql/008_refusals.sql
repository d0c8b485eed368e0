-- 008_refusals.sql - requests refused before any key was known.
--
-- A request without a valid key (or one the server itself refused: a
-- malformed head, a deadline, too many connections) is not a usage
-- record: anyone can send millions. They are counted per source address
-- and minute instead; source ::/0 pools the addresses past what one
-- gateway tracks in a minute.
CREATE TABLE unauthenticated_refusals (
    minute timestamptz NOT NULL,
    source inet NOT NULL,
    refusals bigint NOT NULL CHECK (refusals > 0),
    PRIMARY KEY (minute, source)
);
