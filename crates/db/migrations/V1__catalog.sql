-- The catalog: one row per stored recording, made from its manifest
-- (custody_format::catalog::Entry, kept whole in `entry`); the other
-- columns are what searches filter and sort by.
CREATE TABLE catalog (
    manifest_key    text PRIMARY KEY,
    recorder        text NOT NULL,
    recording_id    text NOT NULL,
    officer         text,
    unit            text,
    category        text,
    case_id         text,
    occasion        text,
    -- When the recording started by its device, else when it was received.
    sort_at         timestamptz,
    deadline_status text,
    entry           jsonb NOT NULL
);
CREATE INDEX catalog_recording ON catalog (recorder, recording_id);
CREATE INDEX catalog_sort ON catalog (sort_at DESC);
CREATE INDEX catalog_officer ON catalog (officer, sort_at DESC);
CREATE INDEX catalog_case ON catalog (case_id);
CREATE INDEX catalog_category ON catalog (category, sort_at DESC);
CREATE INDEX catalog_deadline ON catalog (deadline_status) WHERE deadline_status IS NOT NULL;
