-- Records-office decisions (docs/command-center.md §10): the first
-- decision stored for a request is the only one. The request document in
-- storage stays the record; this table arbitrates between gateways,
-- which storage cannot (no conditional writes).
CREATE TABLE request_decisions (
    request_id  text PRIMARY KEY,
    status      text NOT NULL,
    decided_by  text NOT NULL,
    decided_at  text NOT NULL
);
