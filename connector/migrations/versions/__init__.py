"""Hand-written schema revisions, one module per change, named for what it does."""
