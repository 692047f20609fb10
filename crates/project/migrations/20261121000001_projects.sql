-- Projects, their scenes and assets, and users' style presets. Every row carries owner_id, so each
-- query checks ownership in its WHERE clause (no cross-tenant reads, OWASP API1:2023 BOLA).

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    title       text NOT NULL,
    source_text text,
    topic       text,
    -- "16:9", "9:16", "1:1", "4:5".
    aspect      text NOT NULL,
    style       text NOT NULL,
    settings    jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_one_source CHECK ((source_text IS NULL) <> (topic IS NULL))
);
-- Newest first per owner (ids are UUID v7, time-ordered).
CREATE INDEX projects_owner ON projects (owner_id, id DESC);

CREATE TABLE scenes (
    id           uuid PRIMARY KEY,
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id     uuid NOT NULL,
    position     integer NOT NULL CHECK (position >= 0),
    heading      text NOT NULL DEFAULT '',
    narration    text NOT NULL DEFAULT '',
    search_terms text[] NOT NULL DEFAULT '{}',
    duration_s   double precision NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scenes_project ON scenes (project_id, position, id);

CREATE TABLE assets (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id    uuid NOT NULL,
    scene_id    uuid REFERENCES scenes (id) ON DELETE SET NULL,
    kind        text NOT NULL,
    storage_key text NOT NULL,
    mime_type   text NOT NULL DEFAULT '',
    size_bytes  bigint NOT NULL DEFAULT 0,
    width_px    integer NOT NULL DEFAULT 0,
    height_px   integer NOT NULL DEFAULT 0,
    duration_s  double precision NOT NULL DEFAULT 0,
    sha256      text NOT NULL DEFAULT '',
    credit      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assets_project ON assets (project_id, id);

-- A user's own style presets (built-in ones ship with the binary).
CREATE TABLE presets (
    owner_id    uuid NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    style_toml  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, name)
);
