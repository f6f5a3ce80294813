-- Dagster's runs, events and schedules get a database of their own on the compose PostgreSQL,
-- beside the `postgres` database the sinks write to.
CREATE DATABASE dagster;
