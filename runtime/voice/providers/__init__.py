"""Speech providers behind small interfaces: one module per vendor."""
