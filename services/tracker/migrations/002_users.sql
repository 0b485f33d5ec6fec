-- Users (seeds 003 and 004 merged): a numeric id, never reused, from 0 as
-- seed 004 counted; a string userId (given, or the id as text); their books.
CREATE SEQUENCE users_id_seq MINVALUE 0 START 0;
CREATE TABLE users (
    id      bigint  PRIMARY KEY DEFAULT nextval('users_id_seq'),
    user_id text    NOT NULL UNIQUE,
    name    text    NOT NULL
);
ALTER SEQUENCE users_id_seq OWNED BY users.id;
CREATE TABLE user_books (
    id      bigserial PRIMARY KEY,
    user_pk bigint    NOT NULL REFERENCES users ON DELETE CASCADE,
    isbn    text      NOT NULL,
    name    text      NOT NULL,
    author  text      NOT NULL
);
CREATE INDEX user_books_user_pk ON user_books (user_pk, id);
-- Seed 004's users, which its Postman collection reads (/users/0).
INSERT INTO users (id, user_id, name) VALUES (0, '0', 'Alice'), (1, '1', 'Bob'), (2, '2', 'Cindy');
SELECT setval('users_id_seq', 2);
