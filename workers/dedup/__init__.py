"""Deduplication and stories: pure stages (:mod:`.minhash`, :mod:`.stories`) and the
Redis-backed index every worker shares (:mod:`.index`)."""
