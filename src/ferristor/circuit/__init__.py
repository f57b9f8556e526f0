"""Circuit level: the synapse layout, the operation ledger and the FeCAP→memristor transfer."""
