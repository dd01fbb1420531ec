"""classify's machine learning: sentence embeddings (and their compiled and quantised forward passes), the
classification engine and its heads (zero-shot prototypes, the trained ensemble, sentiment, urgency
signals, language), near-duplicates and topic clustering. No database and no HTTP here: the rest of
`classify/` is the service around it."""
