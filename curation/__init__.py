"""Training data: participant splits, immutable snapshots, export and import of labels."""
