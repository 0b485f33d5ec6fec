-- Work items (seed 002): the original's table, with NOT NULL where the API
-- requires a value.
CREATE TABLE work_items (
    iditem      serial PRIMARY KEY,
    description text        NOT NULL,
    guide       varchar(45) NOT NULL,
    status      text        NOT NULL,
    username    varchar(45) NOT NULL,
    archived    boolean     NOT NULL DEFAULT false
);
