-- Each book as the lists show it, its author's names included (books.doc),
-- kept by triggers whatever writes the rows: the API, the catalogue loader,
-- SQL by hand. A page of books is then read from books alone, without a
-- join and without building an object per row on every read.
ALTER TABLE books ADD COLUMN doc json;

CREATE FUNCTION books_render() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT json_build_object('Books.BookID', NEW.bookid, 'Books.Title', NEW.title,
                             'Authors.AuthorID', a.authorid, 'Authors.FirstName', a.firstname,
                             'Authors.LastName', a.lastname)
      INTO NEW.doc FROM authors a WHERE a.authorid = NEW.authorid;
    RETURN NEW;
END $$;
CREATE TRIGGER books_render BEFORE INSERT OR UPDATE ON books
    FOR EACH ROW EXECUTE FUNCTION books_render();

-- An author renamed (the API never does; SQL may): their books again.
CREATE FUNCTION authors_rerender() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE books SET authorid = authorid WHERE authorid = NEW.authorid;
    RETURN NULL;
END $$;
CREATE TRIGGER authors_rerender AFTER UPDATE ON authors FOR EACH ROW
    WHEN (OLD.firstname IS DISTINCT FROM NEW.firstname OR
          OLD.lastname IS DISTINCT FROM NEW.lastname)
    EXECUTE FUNCTION authors_rerender();

UPDATE books SET authorid = authorid;
ALTER TABLE books ALTER COLUMN doc SET NOT NULL;
