"""The schema, as ordered migrations. Add new ones at the end; never edit an applied one.

Times are stored as REAL seconds since the epoch (UTC): they sort, subtract
and compare without parsing, and the dashboard formats them for people.
"""

from sqlite_utils import Database, Migrations

from storage.commits import backfill_authors, backfill_commits
from storage.stage_order import renumber

migrations = Migrations("promobot")


@migrations()
def m001_inbox(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            delivery_id TEXT NOT NULL UNIQUE,   -- X-GitHub-Delivery: the same on a redelivery
            event TEXT NOT NULL,
            action TEXT,
            repo_key TEXT NOT NULL,             -- processing is ordered within one key
            body BLOB NOT NULL,
            received_at REAL NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending', -- pending, done, ignored, failed
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            processed_at REAL,
            error TEXT
        );
        CREATE INDEX deliveries_pending ON deliveries (state, id);
        """
    )


@migrations()
def m002_repositories_and_builds(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE installations (
            id INTEGER PRIMARY KEY,             -- GitHub's installation id
            account TEXT NOT NULL,
            target_type TEXT,
            created_at REAL NOT NULL,
            suspended_at REAL,
            deleted_at REAL
        );
        CREATE TABLE repositories (
            id INTEGER PRIMARY KEY,             -- GitHub's repository id
            full_name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            html_url TEXT NOT NULL,
            installation_id INTEGER,
            last_build_number INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE builds (
            id INTEGER PRIMARY KEY,
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            number INTEGER NOT NULL,
            sha TEXT NOT NULL,
            message TEXT NOT NULL,
            author TEXT NOT NULL,
            html_url TEXT NOT NULL,
            commits INTEGER NOT NULL DEFAULT 1,  -- commits the push carried
            pushed_at REAL NOT NULL,
            ci_state TEXT NOT NULL DEFAULT 'pending',  -- pending, success, failure
            ci_changed_at REAL NOT NULL,
            UNIQUE (repo_id, number),
            UNIQUE (repo_id, sha)
        );
        CREATE TABLE check_reports (
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            sha TEXT NOT NULL,
            context TEXT NOT NULL,              -- status context or check run name
            kind TEXT NOT NULL,                 -- status, check_run, check_suite
            state TEXT NOT NULL,                -- pending, success, failure
            description TEXT,
            target_url TEXT,
            reported_at REAL NOT NULL,          -- the report's own timestamp, not arrival
            PRIMARY KEY (repo_id, sha, context)
        );
        -- Every change of one context's state, for flaky detection and the digest.
        CREATE TABLE check_transitions (
            id INTEGER PRIMARY KEY,
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            sha TEXT NOT NULL,
            context TEXT NOT NULL,
            state TEXT NOT NULL,
            target_url TEXT,
            at REAL NOT NULL
        );
        CREATE INDEX check_transitions_sha ON check_transitions (repo_id, sha);
        CREATE INDEX check_transitions_at ON check_transitions (at);
        """
    )


@migrations()
def m003_pipeline(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE promotions (
            id INTEGER PRIMARY KEY,
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            build_id INTEGER NOT NULL REFERENCES builds (id),
            stage TEXT NOT NULL,
            requested_by TEXT NOT NULL,         -- Slack user id, or 'promobot' for auto
            state TEXT NOT NULL,                -- waiting, approved, rejected, expired, superseded
            forced_reason TEXT,
            rollback INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            expires_at REAL,
            decided_at REAL,
            decided_by TEXT,
            reason TEXT
        );
        CREATE INDEX promotions_open ON promotions (repo_id, stage, state);
        CREATE TABLE approvals (
            promotion_id INTEGER NOT NULL REFERENCES promotions (id),
            user_id TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (promotion_id, user_id)
        );
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY,
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            build_id INTEGER NOT NULL REFERENCES builds (id),
            stage TEXT NOT NULL,
            promotion_id INTEGER REFERENCES promotions (id),
            github_id INTEGER UNIQUE,           -- known once GitHub created it
            state TEXT NOT NULL,                -- requested, queued, in_progress, success, …
            requested_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL
        );
        CREATE INDEX deployments_stage ON deployments (repo_id, stage, id);
        CREATE INDEX deployments_build ON deployments (build_id);
        CREATE TABLE locks (
            id INTEGER PRIMARY KEY,
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            stage TEXT NOT NULL,
            locked_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL,
            lifted_at REAL,
            lifted_by TEXT
        );
        CREATE INDEX locks_open ON locks (repo_id, stage, lifted_at);
        CREATE TABLE freezes (
            id INTEGER PRIMARY KEY,
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            frozen_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            ended_by TEXT
        );
        CREATE TABLE pull_requests (
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            number INTEGER NOT NULL,
            head_sha TEXT NOT NULL,
            base_ref TEXT NOT NULL,
            title TEXT NOT NULL,
            author TEXT NOT NULL,
            state TEXT NOT NULL,                -- open, closed
            draft INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL,
            PRIMARY KEY (repo_id, number)
        );
        CREATE INDEX pull_requests_open ON pull_requests (repo_id, state);
        """
    )


@migrations()
def m004_audit_and_outbox(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE event_log (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,                -- Slack user id, GitHub login, or 'promobot'
            action TEXT NOT NULL,
            repo_id INTEGER,
            build_id INTEGER,
            stage TEXT,
            reason TEXT,
            forced INTEGER NOT NULL DEFAULT 0,
            detail TEXT                         -- JSON
        );
        CREATE INDEX event_log_build ON event_log (build_id);
        CREATE INDEX event_log_stage ON event_log (repo_id, stage, id);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            target TEXT NOT NULL,               -- slack, github
            method TEXT NOT NULL,               -- slack.message, github.request, …
            lane TEXT NOT NULL,                 -- pacing and ordering: a channel or an installation
            coalesce_key TEXT,                  -- pending rows of one key collapse
            payload TEXT NOT NULL,              -- JSON
            state TEXT NOT NULL DEFAULT 'pending', -- pending, sent, superseded, failed
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            sent_at REAL,
            error TEXT
        );
        CREATE INDEX outbox_pending ON outbox (state, id);
        CREATE INDEX outbox_coalesce ON outbox (coalesce_key, state);
        -- Where a long-lived Slack message lives, so it is edited, never posted twice.
        CREATE TABLE slack_messages (
            key TEXT PRIMARY KEY,               -- build:<id>, promotion:<id>, …
            channel_id TEXT NOT NULL,
            ts TEXT NOT NULL,
            posted_at REAL NOT NULL
        );
        CREATE TABLE digests (
            channel TEXT NOT NULL,
            day TEXT NOT NULL,                  -- local date in digest.timezone
            recorded_at REAL NOT NULL,
            PRIMARY KEY (channel, day)
        );
        """
    )


@migrations()
def m005_pr_statuses(db: Database) -> None:
    db.executescript(
        """
        -- The last promobot/pipeline status queued per pull request, so an
        -- identical one is never written twice.
        CREATE TABLE pr_statuses (
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            number INTEGER NOT NULL,
            sha TEXT NOT NULL,
            state TEXT NOT NULL,
            description TEXT NOT NULL,
            target_url TEXT,
            queued_at REAL NOT NULL,
            PRIMARY KEY (repo_id, number)
        );
        """
    )


@migrations()
def m006_outbox_leases(db: Database) -> None:
    # A relay leases a row before sending it, so two instances on one database
    # never send the same row; a lease left by a crash expires on its own.
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
        ALTER TABLE outbox ADD COLUMN lease_until REAL;
        """
    )


@migrations()
def m007_slack_channels(db: Database) -> None:
    # Channel names as configured, with the IDs Slack answered for them: a retry after a
    # crash looks the channel's history up by ID to see whether its post already landed.
    db.executescript(
        """
        CREATE TABLE slack_channels (
            name TEXT PRIMARY KEY,
            id TEXT NOT NULL
        );
        """
    )


@migrations()
def m008_dev_mode(db: Database) -> None:
    # Only `promobot serve --dev` writes these: what would have gone to Slack and GitHub.
    db.executescript(
        """
        CREATE TABLE dev_messages (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL,                 -- post, edit, reply, ephemeral, plain, response
            key TEXT,                           -- slack_messages key of a keyed message
            channel TEXT NOT NULL,              -- as addressed: a name like #releases, or an ID
            ts TEXT,
            thread_ts TEXT,
            user_id TEXT,                       -- the recipient of an ephemeral message
            text TEXT NOT NULL,
            blocks TEXT                         -- JSON
        );
        CREATE INDEX dev_messages_key ON dev_messages (key, id);
        CREATE TABLE dev_github_calls (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            installation_id INTEGER,
            body TEXT,                          -- JSON
            answer TEXT,                        -- JSON: what GitHub would have answered
            deploy_step INTEGER NOT NULL DEFAULT 0,  -- deployer: 0 new, 1 in_progress, 2 done
            deploy_due REAL                     -- when the deployer plays the next step
        );
        CREATE INDEX dev_github_calls_due ON dev_github_calls (deploy_step, deploy_due);
        """
    )


@migrations()
def m009_deployment_success(db: Database) -> None:
    # When a deployment reached success: soak and "the build there now" count from it,
    # even after GitHub later marks the deployment inactive.
    db.executescript(
        """
        ALTER TABLE deployments ADD COLUMN succeeded_at REAL;
        CREATE INDEX deployments_success ON deployments (repo_id, stage, succeeded_at);
        -- A rollback names the build it took out of the stage: that build's soak there is void.
        ALTER TABLE promotions ADD COLUMN replaces_build_id INTEGER REFERENCES builds (id);
        """
    )


@migrations()
def m010_digest_indexes(db: Database) -> None:
    # The digest reads one repository's last day of check transitions and its CI events since
    # a build: without these, a year of history (a million transitions) is read to find them.
    db.executescript(
        """
        CREATE INDEX check_transitions_repo_at ON check_transitions (repo_id, at);
        CREATE INDEX event_log_action ON event_log (repo_id, action, build_id);
        """
    )


@migrations()
def m011_redeliveries(db: Database) -> None:
    # GitHub never retries a delivery: promobot asks it to, once per GUID, and remembers that
    # it asked (across restarts) and how far back each sweep of GitHub's list looked.
    db.executescript(
        """
        CREATE TABLE redeliveries (
            guid TEXT PRIMARY KEY,              -- X-GitHub-Delivery of the missed delivery
            hook_delivery_id INTEGER NOT NULL,  -- GitHub's id of the failed attempt
            event TEXT NOT NULL,
            action TEXT,
            status TEXT NOT NULL,               -- what GitHub said of the failed attempt
            delivered_at REAL NOT NULL,         -- when GitHub tried
            asked_at REAL NOT NULL,
            outbox_id INTEGER REFERENCES outbox (id)  -- the request to GitHub, sent by the relay
        );
        CREATE TABLE redelivery_sweeps (
            id INTEGER PRIMARY KEY,
            started_at REAL NOT NULL,
            since REAL NOT NULL,                -- how far back GitHub's list was read
            finished_at REAL,
            listed INTEGER NOT NULL DEFAULT 0,
            asked INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        """
    )


@migrations()
def m012_outbox_lanes(db: Database) -> None:
    # The relay looks up the lanes with pending rows, and each lane's first row, on every
    # commit: by (state, lane) both are a few index seeks, however many rows wait behind a
    # Slack outage, instead of a read of every pending row.
    db.executescript("CREATE INDEX outbox_lanes ON outbox (state, lane, id);")


@migrations()
def m013_deployments_live(db: Database) -> None:
    # The dashboard shows, per stage, the newest successful deployment, and /ship status the
    # deployment in flight: with this index each is a seek per stage, not a walk through every
    # deployment the repository ever had.
    db.executescript(
        "CREATE INDEX deployments_live ON deployments"
        " (repo_id, stage, state, coalesce(finished_at, updated_at));"
    )


@migrations()
def m014_metrics(db: Database) -> None:
    # Lead time and reverts need every commit of every push, not only the head the build keeps;
    # push bodies are dropped a week after processing, so each commit is kept here at ingest.
    # The bodies still stored are read once, below, so history already here is measured too.
    db.executescript(
        """
        CREATE TABLE commits (
            repo_id INTEGER NOT NULL REFERENCES repositories (id),
            sha TEXT NOT NULL,
            build_id INTEGER NOT NULL REFERENCES builds (id),  -- the build whose push carried it
            message TEXT NOT NULL,
            committed_at REAL NOT NULL,         -- the commit's own timestamp
            PRIMARY KEY (repo_id, sha)
        );
        CREATE INDEX commits_build ON commits (build_id);
        -- The metrics read a window of builds and deployments by time.
        CREATE INDEX builds_pushed ON builds (repo_id, pushed_at);
        CREATE INDEX deployments_created ON deployments (repo_id, created_at);
        """
    )
    backfill_commits(db)


@migrations()
def m015_commit_authors(db: Database) -> None:
    # What a promotion carries names each commit's author and pull request, and `/ship where`
    # finds a pull request's merge commit or a person's latest change: both kept at ingest,
    # and read once from the push bodies still stored. A build whose push carried GitHub's cap
    # of commits may have had more: the diff then says so and points at the compare view.
    db.executescript(
        """
        ALTER TABLE commits ADD COLUMN author TEXT NOT NULL DEFAULT '';
        ALTER TABLE commits ADD COLUMN pr INTEGER;
        CREATE INDEX commits_pr ON commits (repo_id, pr) WHERE pr IS NOT NULL;
        CREATE INDEX commits_author ON commits (repo_id, author COLLATE NOCASE, build_id);
        ALTER TABLE builds ADD COLUMN commits_capped INTEGER NOT NULL DEFAULT 0;
        """
    )
    backfill_authors(db)


@migrations()
def m016_people(db: Database) -> None:
    # Slack display names, looked up with users.info (scope users:read): the dashboard and
    # GitHub statuses show people by name, and a transaction can read them without Slack.
    db.executescript(
        """
        CREATE TABLE people (
            user_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            fetched_at REAL NOT NULL
        );
        """
    )


@migrations()
def m017_deployments_state(db: Database) -> None:
    # The digest reads a repository's latest successful deployments and the dashboard those in
    # flight: by (repo_id, state, id) each is a seek and a short walk, not a sort of them all.
    db.executescript("CREATE INDEX deployments_state ON deployments (repo_id, state, id);")


@migrations()
def m018_ingest_adopted(db: Database) -> None:
    # How far the deliveries of each ingest file (storage/ingest.py, named by its token) have
    # been copied into `deliveries`: written in the copy's own transaction.
    db.executescript(
        "CREATE TABLE ingest_adopted (token TEXT PRIMARY KEY, through INTEGER NOT NULL);"
    )


@migrations()
def m019_read_indexes(db: Database) -> None:
    # Reads that must cost the same over a week and over years: a stage's newest failure (a
    # max() seek per state, not a walk back through every success), the deployments since a
    # moment (the dashboard's stream), a build's promotions and rollbacks, what waits.
    db.executescript(
        """
        CREATE INDEX deployments_stage_state ON deployments (repo_id, stage, state, id);
        CREATE INDEX deployments_succeeded ON deployments (repo_id, succeeded_at);
        CREATE INDEX promotions_build ON promotions (build_id);
        CREATE INDEX promotions_replaces ON promotions (replaces_build_id) WHERE rollback = 1;
        CREATE INDEX promotions_state ON promotions (repo_id, state, id);
        """
    )


@migrations()
def m020_rate_limit_pauses(db: Database) -> None:
    # Slack's 429 pauses a Web API method workspace-wide, for every channel's lane: kept here
    # (storage/pauses.py) as well as in memory, so a restart within the pause still waits.
    db.executescript("CREATE TABLE rate_limit_pauses (name TEXT PRIMARY KEY, until REAL NOT NULL);")


@migrations()
def m021_stage_order(db: Database) -> None:
    # Which build is live in a stage, and whether a rollback came after a build went live, is
    # the order in which those events were recorded, not a clock reading: two successes (or a
    # success and a rollback) can share one. Each success and each rollback takes the next
    # number of its repository's sequence; triggers assign it in the writing transaction, so
    # every writer (a status webhook, a rollback, a backfill) gets it. The times stay for people.
    db.executescript(
        """
        ALTER TABLE repositories ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE deployments ADD COLUMN success_seq INTEGER;
        ALTER TABLE promotions ADD COLUMN rollback_seq INTEGER;
        CREATE INDEX deployments_success_seq ON deployments (repo_id, stage, success_seq);
        CREATE TRIGGER deployments_success_insert AFTER INSERT ON deployments
        WHEN NEW.succeeded_at IS NOT NULL BEGIN
            UPDATE repositories SET last_seq = last_seq + 1 WHERE id = NEW.repo_id;
            UPDATE deployments SET success_seq = (SELECT last_seq FROM repositories
                WHERE id = NEW.repo_id) WHERE id = NEW.id;
        END;
        CREATE TRIGGER deployments_success_update AFTER UPDATE OF succeeded_at ON deployments
        BEGIN
            UPDATE repositories SET last_seq = last_seq + 1
                WHERE id = NEW.repo_id AND NEW.succeeded_at IS NOT NULL;
            UPDATE deployments SET success_seq = CASE WHEN NEW.succeeded_at IS NULL THEN NULL
                ELSE (SELECT last_seq FROM repositories WHERE id = NEW.repo_id) END
                WHERE id = NEW.id;
        END;
        CREATE TRIGGER promotions_rollback_insert AFTER INSERT ON promotions
        WHEN NEW.rollback = 1 BEGIN
            UPDATE repositories SET last_seq = last_seq + 1 WHERE id = NEW.repo_id;
            UPDATE promotions SET rollback_seq = (SELECT last_seq FROM repositories
                WHERE id = NEW.repo_id) WHERE id = NEW.id;
        END;
        """
    )
    renumber(db)


@migrations()
def m022_redelivery_requested(db: Database) -> None:
    # When the relay last sent a redelivery request: after a lost answer it waits for GitHub
    # to list the redelivery before asking again, and a restart within that wait must know it.
    db.executescript("ALTER TABLE redeliveries ADD COLUMN requested_at REAL;")


@migrations()
def m023_span_totals(db: Database) -> None:
    # /ship status and every promotion's diff count what a span of builds carries: its
    # commits, its capped pushes, its builds whose commits are kept. Summed over the span,
    # that read every build in it: 4.7 ms on the event loop for 2,179 undeployed builds, and
    # more each build. Running totals per build make it a lookup at each end. Triggers keep
    # them in the writing transaction, for every writer, as m021's sequence does.
    db.executescript(
        """
        ALTER TABLE builds ADD COLUMN commits_stored INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE builds ADD COLUMN commits_through INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE builds ADD COLUMN capped_through INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE builds ADD COLUMN stored_through INTEGER NOT NULL DEFAULT 0;
        -- Green builds not yet in production are counted from the index alone; a stage's
        -- rollbacks and the stages with open promotions are found without walking every
        -- promotion (one per green build when a stage promotes automatically).
        CREATE INDEX builds_ci ON builds (repo_id, ci_state, number);
        CREATE INDEX promotions_rollbacks ON promotions (repo_id, stage, id) WHERE rollback = 1;
        CREATE INDEX promotions_waiting ON promotions (repo_id, stage, state)
            WHERE state IN ('waiting', 'queued');
        UPDATE builds SET commits_stored = 1
            WHERE EXISTS (SELECT 1 FROM commits c WHERE c.build_id = builds.id);
        UPDATE builds SET commits_through = t.c, capped_through = t.k, stored_through = t.s
            FROM (SELECT id, sum(commits) OVER w AS c, sum(commits_capped) OVER w AS k,
                  sum(commits_stored) OVER w AS s FROM builds
                  WINDOW w AS (PARTITION BY repo_id ORDER BY number)) t
            WHERE t.id = builds.id;
        CREATE TRIGGER builds_totals_insert AFTER INSERT ON builds BEGIN
            UPDATE builds SET commits_through = commits_through + NEW.commits,
                capped_through = capped_through + NEW.commits_capped,
                stored_through = stored_through + NEW.commits_stored
                WHERE repo_id = NEW.repo_id AND number > NEW.number;
            UPDATE builds SET
                commits_through = NEW.commits + coalesce((SELECT p.commits_through FROM builds p
                    WHERE p.repo_id = NEW.repo_id AND p.number < NEW.number
                    ORDER BY p.number DESC LIMIT 1), 0),
                capped_through = NEW.commits_capped + coalesce((SELECT p.capped_through
                    FROM builds p WHERE p.repo_id = NEW.repo_id AND p.number < NEW.number
                    ORDER BY p.number DESC LIMIT 1), 0),
                stored_through = NEW.commits_stored + coalesce((SELECT p.stored_through
                    FROM builds p WHERE p.repo_id = NEW.repo_id AND p.number < NEW.number
                    ORDER BY p.number DESC LIMIT 1), 0)
                WHERE id = NEW.id;
        END;
        CREATE TRIGGER builds_totals_update
        AFTER UPDATE OF commits, commits_capped, commits_stored ON builds BEGIN
            UPDATE builds SET commits_through = commits_through + NEW.commits - OLD.commits,
                capped_through = capped_through + NEW.commits_capped - OLD.commits_capped,
                stored_through = stored_through + NEW.commits_stored - OLD.commits_stored
                WHERE repo_id = NEW.repo_id AND number >= NEW.number;
        END;
        CREATE TRIGGER commits_stored AFTER INSERT ON commits BEGIN
            UPDATE builds SET commits_stored = 1 WHERE id = NEW.build_id AND commits_stored = 0;
        END;
        """
    )
