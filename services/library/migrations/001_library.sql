-- Lending library (seed 000): the original's four tables, with the rules
-- held by PostgreSQL itself.
CREATE TABLE authors (
    authorid  serial  PRIMARY KEY,
    firstname varchar NOT NULL,
    lastname  varchar NOT NULL,
    UNIQUE (firstname, lastname)      -- POST /api/books reuses an author
);
CREATE TABLE books (
    bookid   serial  PRIMARY KEY,
    title    varchar NOT NULL,
    authorid int     NOT NULL REFERENCES authors
);
CREATE INDEX books_authorid ON books (authorid);
CREATE TABLE patrons (
    patronid  serial  PRIMARY KEY,
    firstname varchar NOT NULL,
    lastname  varchar NOT NULL
);
-- A returned loan keeps its history when its patron is deleted (patronid
-- set to NULL by the delete); an open loan blocks the delete (foreign key).
CREATE TABLE lending (
    lendingid serial PRIMARY KEY,
    bookid    int    NOT NULL REFERENCES books,
    patronid  int    REFERENCES patrons,
    lent      date   NOT NULL DEFAULT current_date,
    returned  date,
    CHECK (returned IS NOT NULL OR patronid IS NOT NULL)
);
-- At most one open loan per book: two concurrent lends, one wins.
CREATE UNIQUE INDEX lending_one_open_loan ON lending (bookid) WHERE returned IS NULL;
CREATE INDEX lending_patronid ON lending (patronid);
