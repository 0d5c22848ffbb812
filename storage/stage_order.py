"""The order of events in a stage: each success and each rollback numbered per repository."""

from sqlite_utils import Database


def renumber(db: Database) -> None:
    """Number every success and rollback of each repository in the order they were recorded."""
    # What a database written before the sequence knows of that order: the times, then on a
    # tie the event log (its row for the success or the rollback was written in the same
    # transaction), then a success before a rollback (as the old rule read a tie) and the ids.
    db.executescript(
        """
        CREATE TEMP TABLE stage_events AS SELECT repo_id, kind, id, row_number() OVER (
            PARTITION BY repo_id ORDER BY at, logged, kind, id) AS seq FROM (
            SELECT d.repo_id, 'd' AS kind, d.id, d.succeeded_at AS at, (
                SELECT max(e.id) FROM event_log e WHERE e.repo_id = d.repo_id
                AND e.action = 'deployment.success' AND e.build_id = d.build_id
                AND json_extract(e.detail, '$.deployment') = d.id) AS logged
            FROM deployments d WHERE d.succeeded_at IS NOT NULL
            UNION ALL SELECT p.repo_id, 'p', p.id, p.created_at, (
                SELECT max(e.id) FROM event_log e WHERE e.repo_id = p.repo_id
                AND e.action = 'rollback' AND e.build_id = p.build_id
                AND json_extract(e.detail, '$.promotion') = p.id)
            FROM promotions p WHERE p.rollback = 1);
        UPDATE deployments SET success_seq = e.seq FROM temp.stage_events e
            WHERE e.kind = 'd' AND e.id = deployments.id;
        UPDATE promotions SET rollback_seq = e.seq FROM temp.stage_events e
            WHERE e.kind = 'p' AND e.id = promotions.id;
        UPDATE repositories SET last_seq = coalesce((SELECT max(seq) FROM temp.stage_events e
            WHERE e.repo_id = repositories.id), 0);
        DROP TABLE temp.stage_events;
        """
    )
