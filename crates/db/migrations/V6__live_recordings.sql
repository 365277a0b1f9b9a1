-- Open live recordings of the cluster: where each is stored (its prefix,
-- fixed when it was created) and the epoch of its spool copy — the lease
-- token of the gateway that created it or last continued it from storage.
-- A gateway that finds its own spool copy of another epoch lost the
-- recording to another gateway and discards that copy. The row goes when
-- the recording is stored whole.
CREATE TABLE live_recordings (
    recorder      text NOT NULL,
    recording_id  text NOT NULL,
    prefix        text NOT NULL,
    epoch         bigint NOT NULL,
    PRIMARY KEY (recorder, recording_id)
);
