-- The server nodes sharing this database, each with a lease it renews; a
-- node whose lease expired is taken over by another.
CREATE TABLE nodes (
    node_id       TEXT    PRIMARY KEY,
    -- Where other nodes reach it (http://HOST:PORT).
    endpoint      TEXT    NOT NULL,
    -- Microseconds since the Unix epoch.
    lease_expires BIGINT  NOT NULL
);
