"""The ingest wing: sources -> store.

    files.ingest, files.inbox_files     files and URLs, by content, into the store; the inbox's files
    fetch.fetch_sources                 the sources listed in subscribers.yaml, fetched politely

Typed against store.IngestStore; it never ranks or sends.
"""
