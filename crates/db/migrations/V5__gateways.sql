-- The gateways of the cluster and where their command centers answer each
-- other: so that the wall of any gateway shows the live feeds another
-- receives. Each gateway refreshes its row every few seconds.
CREATE TABLE gateways (
    id         text PRIMARY KEY,
    http_addr  text NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
);
