"""digest: a personalized research-paper newsletter.

The morning job, as pseudocode (each line is one small stage in its own module)::

    papers   = sources.parse(file)               for each new file in the inbox
    store.add_papers(papers)                     # one row per paper identity
    for subscriber in config.load_subscribers():
        ranked = rank.rank(profile, candidates)  # KeyBERT + embeddings, explained
        digest = render.render(subscriber, ranked)
        if ledger.claim(subscriber, day):        # never twice
            mailer.send(mail.build_message(digest))
            ledger.mark_sent(...)

`digest.cli` only parses flags, calls `digest.pipeline`, and prints.
"""

__version__ = "0.1.0"
