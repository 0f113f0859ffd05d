-- Roles for a Timeline log on PostgreSQL: an owner that creates and migrates the tables, and
-- the service's role, which reads and appends the log but can never change or delete an entry.
-- Replace the passwords; the names may be changed throughout.

-- 1. As a superuser (or a role with CREATEROLE that owns the database), once:
CREATE ROLE timeline_owner LOGIN PASSWORD 'change-me-owner';
CREATE ROLE timeline_service LOGIN PASSWORD 'change-me-service';
CREATE SCHEMA timeline AUTHORIZATION timeline_owner;
GRANT USAGE ON SCHEMA timeline TO timeline_service;
-- Every table the owner creates here (the projections too, again after each rebuild):
ALTER DEFAULT PRIVILEGES FOR ROLE timeline_owner IN SCHEMA timeline
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO timeline_service;

-- 2. As the owner, create the tables:
--    timeline migrate --db 'postgresql://timeline_owner@HOST:5432/DB?options=-csearch_path%3Dtimeline'

-- 3. As a superuser or the owner, once: the log and its schema version are read-only for the
--    service, but for appends to the log.
REVOKE UPDATE, DELETE, TRUNCATE ON timeline.events FROM timeline_service;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON timeline.schema_version FROM timeline_service;
