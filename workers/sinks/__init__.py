"""Where results go: Redis (articles, page outcomes) and Kafka topics. All writes are idempotent."""
