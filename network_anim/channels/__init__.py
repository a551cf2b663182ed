"""Channel adapters: one module per channel behind the contract in :mod:`.base`."""
