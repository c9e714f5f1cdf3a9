-- The example metadata schema the default CDC table mappings read (provenance/connectors/cdc_mappings.yaml):
-- a Hopsworks-style file-provenance log and app-provenance log, and the Airflow and MLflow tables
-- (the columns the mappings use, with the types those projects give them). Airflow and MLflow create
-- their own tables; these are for the production stack's example database and the tests.

CREATE TABLE IF NOT EXISTS hops_file_provenance_log (
    id              bigserial PRIMARY KEY,
    inode_id        bigint NOT NULL,
    operation       varchar(32) NOT NULL,   -- CREATE, ACCESS_DATA, APPEND, OVERWRITE, DELETE, RENAME, XATTR_*
    io_timestamp    bigint NOT NULL,        -- epoch ms
    io_logical_time bigint,
    io_app_id       varchar(128),
    io_user_name    varchar(128),
    path            text NOT NULL,
    target_path     text,                   -- RENAME
    xattr_name      varchar(255),           -- XATTR_*
    xattr_value     text,
    project_name    varchar(128)
);

CREATE TABLE IF NOT EXISTS yarn_app_provenance_log (
    id              bigserial PRIMARY KEY,
    app_id          varchar(128) NOT NULL,
    app_name        varchar(255),
    app_user        varchar(128),
    app_state       varchar(32) NOT NULL,   -- SUBMITTED, ACCEPTED, RUNNING, FINISHED, FAILED, KILLED
    state_timestamp bigint NOT NULL,        -- epoch ms
    project_name    varchar(128),
    app_command     text,
    git_commit      varchar(64)
);

-- Airflow 2.x
CREATE TABLE IF NOT EXISTS dag_run (
    id              serial PRIMARY KEY,
    dag_id          varchar(250) NOT NULL,
    run_id          varchar(250) NOT NULL,
    state           varchar(50),
    run_type        varchar(50) NOT NULL DEFAULT 'manual',
    queued_at       timestamp with time zone,
    execution_date  timestamp with time zone NOT NULL,
    start_date      timestamp with time zone,
    end_date        timestamp with time zone,
    UNIQUE (dag_id, run_id)
);

CREATE TABLE IF NOT EXISTS task_instance (
    task_id         varchar(250) NOT NULL,
    dag_id          varchar(250) NOT NULL,
    run_id          varchar(250) NOT NULL,
    map_index       integer NOT NULL DEFAULT -1,
    start_date      timestamp with time zone,
    end_date        timestamp with time zone,
    state           varchar(20),
    try_number      integer NOT NULL DEFAULT 0,
    hostname        varchar(1000),
    unixname        varchar(1000),
    operator        varchar(1000),
    queued_dttm     timestamp with time zone,
    pid             integer,
    PRIMARY KEY (dag_id, task_id, run_id, map_index)
);

-- MLflow tracking and model registry: a few of the tables MLflow's own migrations create (the columns the
-- default mappings read), for the example database; a real MLflow database has them all (see
-- docs/cdc-mappings.md for what each MLflow table maps to)
CREATE TABLE IF NOT EXISTS runs (
    run_uuid        varchar(32) PRIMARY KEY,
    name            varchar(250),
    source_type     varchar(20),
    source_name     varchar(500),
    entry_point_name varchar(50),
    user_id         varchar(256),
    status          varchar(9),             -- SCHEDULED, RUNNING, FINISHED, FAILED, KILLED
    start_time      bigint,                 -- epoch ms
    end_time        bigint,
    source_version  varchar(50),
    lifecycle_stage varchar(20) DEFAULT 'active',  -- active, deleted
    artifact_uri    varchar(200),
    experiment_id   integer,
    deleted_time    bigint
);

CREATE TABLE IF NOT EXISTS tags (             -- run tags: mlflow.source.name, mlflow.source.git.commit, …
    key             varchar(250) NOT NULL,
    value           varchar(8000),
    run_uuid        varchar(32) NOT NULL REFERENCES runs (run_uuid),
    PRIMARY KEY (key, run_uuid)
);

CREATE TABLE IF NOT EXISTS registered_models (
    name              varchar(256) PRIMARY KEY,
    creation_time     bigint,
    last_updated_time bigint,
    description       varchar(5000)
);

CREATE TABLE IF NOT EXISTS model_versions (
    name              varchar(256) NOT NULL REFERENCES registered_models (name),
    version           integer NOT NULL,
    creation_time     bigint,
    last_updated_time bigint,
    description       varchar(5000),
    user_id           varchar(256),
    current_stage     varchar(20),
    source            varchar(500),         -- what was registered: models:/m-<id> (3.x) or a storage URI
    run_id            varchar(32),
    status            varchar(20),
    PRIMARY KEY (name, version)
);
