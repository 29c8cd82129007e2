"""The ingest wing: sources -> store.

    files.ingest / files.ingest_inbox   files and URLs, by content, into the store
    fetch.fetch_sources                 the sources listed in subscribers.yaml, fetched politely

Typed against store.IngestStore; it never ranks or sends.
"""
