-- books.doc stored compact, as a reply carries it: json_strip_nulls()
-- writes json without the blanks json_build_object() puts between tokens
-- (a book has no nulls to strip), so a page of books is copied into the
-- reply as PostgreSQL sends it instead of being compacted at every read.
CREATE OR REPLACE FUNCTION books_render() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT json_strip_nulls(json_build_object('Books.BookID', NEW.bookid,
                                              'Books.Title', NEW.title,
                                              'Authors.AuthorID', a.authorid,
                                              'Authors.FirstName', a.firstname,
                                              'Authors.LastName', a.lastname))
      INTO NEW.doc FROM authors a WHERE a.authorid = NEW.authorid;
    RETURN NEW;
END $$;

UPDATE books SET authorid = authorid;
