"""digest: a personalized research-paper newsletter.

The morning job, as pseudocode (each line is a small stage in its own module)::

    store = store.open_store(settings)                        # SQLite by default
    for each new file in the inbox:                           # pipeline.ingest_inbox
        papers = sources.read_file(path).papers               # any format, checked per record
        store.ingest_file(sha256, path, day, papers)          # one row per paper identity
    for each subscriber due now (schedule.due):               # pipeline.send -> run_due
        ranked = Ranker.rank_all(subscribers, day)            # rank.featurize + rank.select
        if store.claim_delivery(subscriber, day):             # never twice
            digest = pipeline.render_digest(...)              # links.for_digest + render.render
            mailer.send(mail.serialize(mail.build_message(digest)))   # dispatch: retries, limits
            store.finish_delivery(subscriber, day, status=...)

`digest.cli` only parses flags, calls `digest.pipeline`, and prints.
"""

__version__ = "0.1.0"
