"""Pure pipeline stages: no Kafka, no Redis, no event loop. Each returns an explicit outcome."""
