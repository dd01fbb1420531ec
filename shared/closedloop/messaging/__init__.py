"""JetStream messaging: broker connection, transactional outbox, inbox, consumers, dead letters."""
