-- Docked uploads in cluster mode: a byte is acknowledged to the device only
-- once it is in storage, staged as numbered part objects; this is the list of
-- them, so a device whose gateway died resumes on another gateway from the
-- last acknowledged byte. Removed once the recording is archived.
CREATE TABLE uploads (
    recorder     text NOT NULL,
    recording_id text NOT NULL,
    -- The recording's header (object 0) as the first gateway built it.
    header       bytea NOT NULL,
    -- The spool entry's state (JSON), as of the last change of status.
    state        text NOT NULL,
    -- Bytes staged in storage: the parts, contiguous from 0.
    staged       bigint NOT NULL DEFAULT 0,
    -- The device's `finish` matched: all bytes are staged.
    complete     boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recorder, recording_id)
);
CREATE TABLE upload_parts (
    recorder     text NOT NULL,
    recording_id text NOT NULL,
    part         integer NOT NULL,
    start_at     bigint NOT NULL,
    len          bigint NOT NULL,
    key          text NOT NULL,
    sha256       text NOT NULL,
    PRIMARY KEY (recorder, recording_id, part),
    FOREIGN KEY (recorder, recording_id) REFERENCES uploads ON DELETE CASCADE
);
