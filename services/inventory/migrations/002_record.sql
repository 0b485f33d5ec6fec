-- The record as GET /ec2/{id} shows it, rendered once by the POST that adds
-- the instance: an instance and its packages never change after that, and
-- reading one is then one index lookup instead of a join and an aggregate.
-- NULL for rows written by other means (SQL by hand, earlier versions);
-- GET renders those from the tables.
ALTER TABLE ec2 ADD COLUMN record json;
