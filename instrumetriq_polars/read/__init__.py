"""The reading stage's parts: options (``ReadOptions``), the lanes behind one interface, and a
generic read-ahead (``prefetch``). Nothing is imported here, so that each part is imported alone."""
