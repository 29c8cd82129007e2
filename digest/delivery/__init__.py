"""The delivery wing: ranked lists -> mail -> ledger.

    send.still_due / send.send_ranked   who still needs a digest; claim, render, send, finish
    render, mail, dispatch, links       the message, SMTP or the outbox, the send loop, the links
    queue                               the workers: a second way of sending, past one machine
    reports, mailbox                    what comes back: bounces and complaints read from a
                                        Maildir or IMAP folder (mimeparts reads their parts)

Typed against store.DeliveryStore; it never ranks: it is handed each reader's picks.
"""
