-- A user's books as GET /users/{userId} shows them, appended to by the
-- statement that adds a book (with the user's row locked, so that books
-- added at once append in turn): a GET is one index lookup, not a join and
-- an aggregate. NULL for users whose books were written by other means
-- (SQL by hand, earlier versions); those are rendered from user_books.
ALTER TABLE users ADD COLUMN books json;
