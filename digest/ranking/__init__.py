"""The ranking wing: store -> each subscriber's ranked papers, learning from their votes.

    ranker.Ranker.rank_all(subscribers, day)   the door: candidates, features, profiles, history
    rank.rank_subscribers(...)                 blocks of subscribers; blend, eligible, select
    signals/                                   what each kind of evidence says (one module each)
    features, scores, profile, learn, embed, keyphrases   the parts they are made of

Typed against store.RankingStore; it never ingests or sends.
"""
