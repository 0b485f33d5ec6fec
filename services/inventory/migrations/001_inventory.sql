-- EC2 inventory (seed 001): the original's three tables, with the keys it
-- lacked. An instance's packages keep the order they were sent (ordinal),
-- and a (name, version) pair is linked to an instance at most once.
CREATE TABLE ec2 (
    aws_instance_id   varchar(255) PRIMARY KEY,
    aws_region        varchar(30)  NOT NULL,
    aws_account       varchar(13)  NOT NULL,
    creation_date_utc timestamp(0) NOT NULL
                      DEFAULT date_trunc('second', now() AT TIME ZONE 'UTC')
);
-- Shared by every instance that runs the same version of a package.
CREATE TABLE package (
    package_name    varchar(100) NOT NULL,
    package_version varchar(50)  NOT NULL,
    PRIMARY KEY (package_name, package_version)
);
CREATE TABLE ec2_package (
    aws_instance_id varchar(255) NOT NULL REFERENCES ec2 ON DELETE CASCADE,
    package_name    varchar(100) NOT NULL,
    package_version varchar(50)  NOT NULL,
    ordinal         int          NOT NULL,  -- its place in the request
    PRIMARY KEY (aws_instance_id, package_name, package_version),
    FOREIGN KEY (package_name, package_version) REFERENCES package ON DELETE CASCADE
);
-- GET /ec2?package_name=&package_version= (and the package foreign key).
CREATE INDEX ec2_package_by_package ON ec2_package (package_name, package_version,
                                                    aws_instance_id);
