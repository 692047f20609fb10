-- One database per service (DESIGN.md §1); each service applies its own migrations at start.
CREATE DATABASE studio_user;
CREATE DATABASE studio_project;
CREATE DATABASE studio_ai_job;
