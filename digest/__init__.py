"""digest: a personalized research-paper newsletter.

A front door (digest.app.Digest, built once from the settings) over three wings that never call
one another, each typed against its own narrow view of the store::

    cli.py  daemon.py  web.py          parse, call the front door, print (or answer)
        app.Digest                     owns the store, the ranker, the mailroom, the links
            ingest/    sources -> store                  fetch.py, files.py
            ranking/   store -> ranked lists, learning   ranker.py, rank.py, learn.py, embed.py...
            delivery/  ranked lists -> mail -> ledger    send.py, mail.py, render.py, queue.py...
        store/  sources/  roster.py  settings.py  schedule.py  models.py  text.py  errors.py

The morning job, as `Digest.run` reads::

    fetched  = fetch_sources(store, roster.sources)            # ingest.fetch
    ingested = ingest(store, inbox_files(inbox))               # ingest.files
    for day, readers in schedule.due(subscribers, now, ledger):
        report, due = still_due(store, readers, day)           # delivery.send: ledger, unsubscribes
        ranked = ranker.rank_all(due, day)                     # ranking.ranker
        send_ranked(store, mailroom, day, due, ranked)         # claim -> render -> send -> finish
"""

__version__ = "0.1.0"
