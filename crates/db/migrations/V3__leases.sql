-- Leases: which gateway holds a thing (a live recording) until when. The
-- token grows with every grant, so a holder that lost its lease can be
-- told apart from the new one (fencing).
CREATE SEQUENCE lease_tokens;
CREATE TABLE leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    token       bigint NOT NULL,
    expires_at  timestamptz NOT NULL
);
