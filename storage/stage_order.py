"""The order of events in a stage: each success and each rollback numbered per repository."""

from sqlite_utils import Database


def renumber(db: Database) -> None:
    """Number every success and rollback of each repository in the order their times give."""
    # What databases written before the sequence know of that order: the times, and on a tie
    # a success before a rollback (a rollback at the very moment a build went live took it
    # out) and then the ids.
    db.executescript(
        """
        CREATE TEMP TABLE stage_events AS SELECT repo_id, kind, id, row_number() OVER (
            PARTITION BY repo_id ORDER BY at, kind, id) AS seq FROM (
            SELECT repo_id, 'd' AS kind, id, succeeded_at AS at FROM deployments
                WHERE succeeded_at IS NOT NULL
            UNION ALL SELECT repo_id, 'p', id, created_at FROM promotions WHERE rollback = 1);
        UPDATE deployments SET success_seq = e.seq FROM temp.stage_events e
            WHERE e.kind = 'd' AND e.id = deployments.id;
        UPDATE promotions SET rollback_seq = e.seq FROM temp.stage_events e
            WHERE e.kind = 'p' AND e.id = promotions.id;
        UPDATE repositories SET last_seq = coalesce((SELECT max(seq) FROM temp.stage_events e
            WHERE e.repo_id = repositories.id), 0);
        DROP TABLE temp.stage_events;
        """
    )
